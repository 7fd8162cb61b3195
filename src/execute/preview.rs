//! `run --plan` and `status`: what the orders would do and how the containers differ from
//! their specs, from the same decision as `start` ([`crate::plan::decide`]). Read only: the
//! engine is only inspected (concurrently), never asked to change anything.

use std::collections::{BTreeSet, HashMap};

use futures_util::StreamExt;
use serde::Serialize;

use crate::engine::ContainerInfo;
use crate::engine::convert::{LABEL_HASH, LABEL_KEYS, LABEL_UNIT};
use crate::execute::{OrderError, OrderResult, UnitRun, image, lifecycle};
use crate::plan::{self, Decision, Observed, Wanted};
use crate::unit::order::{Action, HOST, Order, Recreate, Step, UnitArgs};

/// How many inspects run at once.
const INSPECTS: usize = 16;

/// One line of `run --plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanLine {
    /// The order kind (`start`, `stop`, ...).
    pub order: String,
    pub container: String,
    /// `create`, `recreate`, `start`, `keep`, `stop`, `remove`, `build`, `pull`, `skip`, or the
    /// order kind for orders that are not planned further.
    pub action: String,
    pub reasons: Vec<String>,
    /// The unit command of a nested `unit` order this order belongs to (none: the command run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// What the action is on (the container, or an image for `build` and `pull`).
    #[serde(skip)]
    pub subject: String,
}

impl PlanLine {
    /// `recreate web (configuration changed: env.GREETING, ports)`, after `db/start: ` for an
    /// order of a nested unit.
    pub fn text(&self) -> String {
        let unit = self
            .unit
            .as_ref()
            .map_or_else(String::new, |u| format!("{u}: "));
        if self.reasons.is_empty() {
            format!("{unit}{} {}", self.action, self.subject)
        } else {
            format!(
                "{unit}{} {} ({})",
                self.action,
                self.subject,
                self.reasons.join(", ")
            )
        }
    }
}

/// What the engine reports: the containers and the image IDs, inspected concurrently.
#[derive(Debug, Default)]
pub struct Inspected {
    pub containers: HashMap<String, Option<ContainerInfo>>,
    pub images: HashMap<String, Option<String>>,
}

/// Inspects the containers `names` and the images of their specs, at most [`INSPECTS`] at once.
pub async fn inspect(run: &UnitRun<'_>, names: &BTreeSet<String>) -> OrderResult<Inspected> {
    let images: BTreeSet<String> = names
        .iter()
        .filter_map(|n| run.spec(n).ok().and_then(|s| s.image.clone()))
        .collect();
    let engine = run.engine();
    let containers = futures_util::stream::iter(names.iter().cloned())
        .map(|n| async move {
            let info = engine.container(&n).await?;
            OrderResult::Ok((n, info))
        })
        .buffer_unordered(INSPECTS)
        .collect::<Vec<_>>();
    let ids = futures_util::stream::iter(images)
        .map(|i| async move {
            let id = engine.image(&i).await?.map(|info| info.id);
            OrderResult::Ok((i, id))
        })
        .buffer_unordered(INSPECTS)
        .collect::<Vec<_>>();
    let (containers, ids) = futures_util::join!(containers, ids);
    Ok(Inspected {
        containers: containers.into_iter().collect::<OrderResult<_>>()?,
        images: ids.into_iter().collect::<OrderResult<_>>()?,
    })
}

/// What `start` would decide for `name`, given the state so far.
fn start_decision(
    run: &UnitRun<'_>,
    name: &str,
    state: &Inspected,
    recreate: Recreate,
    restart: bool,
) -> OrderResult<(Decision, ContainerInfo)> {
    let spec = run.spec(name)?;
    let req = lifecycle::request(run, spec, HashMap::new())?;
    let info = state.containers.get(name).cloned().flatten();
    let image_id = spec
        .image
        .as_ref()
        .and_then(|i| state.images.get(i).cloned().flatten());
    let decision = plan::decide(
        &Observed {
            container: info.as_ref(),
            image_id: image_id.as_deref(),
        },
        &Wanted {
            hash: &req.hash,
            keys: &req.keys,
            unit_label: &run.naming.unit_label,
            recreate,
            restart,
        },
    );
    // The container as it will be once the decision is carried out.
    let after = match (&decision, info) {
        (Decision::Create | Decision::Recreate(_), _) | (_, None) => ContainerInfo {
            name: name.to_string(),
            image_id: image_id.unwrap_or_default(),
            labels: HashMap::from([
                (LABEL_UNIT.to_string(), run.naming.unit_label.clone()),
                (LABEL_HASH.to_string(), req.hash.clone()),
                (
                    LABEL_KEYS.to_string(),
                    serde_json::to_string(&req.keys).unwrap_or_default(),
                ),
            ]),
            ..ContainerInfo::default()
        },
        (_, Some(info)) => info,
    };
    Ok((decision, after))
}

/// The line for the image a new container needs when it is not on the engine.
fn image_line(run: &UnitRun<'_>, order: &Order, state: &mut Inspected) -> Option<PlanLine> {
    let spec = run.spec(&order.container).ok()?;
    let image = spec.image.clone()?;
    if state.images.get(&image).cloned().flatten().is_some() {
        return None;
    }
    state.images.insert(image.clone(), Some(String::new()));
    Some(PlanLine {
        order: order.action.kind().into(),
        container: order.container.clone(),
        action: if spec.build.is_some() {
            "build"
        } else {
            "pull"
        }
        .into(),
        reasons: vec!["absent".into()],
        unit: None,
        subject: image,
    })
}

/// The lines of a `start` (or of a `create` of an absent container).
fn plan_start(
    run: &UnitRun<'_>,
    order: &Order,
    state: &mut Inspected,
    recreate: Recreate,
    restart: bool,
) -> OrderResult<Vec<PlanLine>> {
    let name = order.container.as_str();
    let (decision, mut after) = start_decision(run, name, state, recreate, restart)?;
    let mut lines = Vec::new();
    if matches!(decision, Decision::Create | Decision::Recreate(_)) {
        lines.extend(image_line(run, order, state));
    }
    let shown = run.display_name(name).to_string();
    lines.push(PlanLine {
        order: order.action.kind().into(),
        container: shown.clone(),
        action: decision.action().into(),
        reasons: decision.reasons(),
        unit: None,
        subject: shown,
    });
    after.running = matches!(order.action, Action::Start(_));
    state.containers.insert(name.to_string(), Some(after));
    Ok(lines)
}

/// Why each image that the orders of `orders` build would be built (empty: unchanged), by
/// container: `build` orders, and `start` / `create` of a container with a `build`.
async fn plan_builds(
    run: &UnitRun<'_>,
    orders: &[&Order],
) -> OrderResult<HashMap<String, (String, Vec<String>)>> {
    let mut memo = HashMap::new();
    let mut out = HashMap::new();
    for order in orders {
        if !matches!(
            order.action,
            Action::Build | Action::Start(_) | Action::Create
        ) {
            continue;
        }
        let Ok(spec) = run.spec(&order.container) else {
            continue;
        };
        if spec.build.is_none() || out.contains_key(&order.container) {
            continue;
        }
        let Some(image) = crate::execute::chain::built_name(spec) else {
            continue;
        };
        let reasons = match image::plan_build(run, spec, &image, &mut memo).await {
            Ok(reasons) => reasons,
            Err(e @ (OrderError::Config(_) | OrderError::Engine(_) | OrderError::Interrupted)) => {
                return Err(e);
            }
            // A build directory an earlier order makes, say: the build decides when it runs.
            Err(e) => vec![format!("decided when it runs: {e}")],
        };
        out.insert(order.container.clone(), (image, reasons));
    }
    Ok(out)
}

/// The `build` / `keep` line of an image the plan looked at (see [`plan_builds`]).
fn build_line(order: &Order, image: &str, reasons: &[String]) -> PlanLine {
    let (action, reasons) = if reasons.is_empty() {
        ("keep", vec!["unchanged".to_string()])
    } else {
        ("build", reasons.to_vec())
    };
    PlanLine {
        order: order.action.kind().into(),
        container: order.container.clone(),
        action: action.into(),
        reasons,
        unit: None,
        subject: image.to_string(),
    }
}

/// The lines of one order; `state` follows what the orders before it did, `builds` holds the
/// build decisions not shown yet.
fn plan_order(
    run: &UnitRun<'_>,
    order: &Order,
    state: &mut Inspected,
    builds: &mut HashMap<String, (String, Vec<String>)>,
) -> OrderResult<Vec<PlanLine>> {
    let name = order.container.as_str();
    let shown = run.display_name(name).to_string();
    let line = |action: &str, reasons: &[&str]| PlanLine {
        order: order.action.kind().into(),
        container: shown.clone(),
        action: action.into(),
        reasons: reasons.iter().map(ToString::to_string).collect(),
        unit: None,
        subject: shown.clone(),
    };
    let current = state.containers.get(name).cloned().flatten();
    let mut lines = Vec::new();
    // A start or create rebuilds a changed image first; an absent one is shown with the
    // container that needs it.
    if matches!(order.action, Action::Start(_) | Action::Create) {
        if let Some((image, reasons)) = builds.get(name) {
            if !reasons.is_empty() && reasons.iter().all(|r| r != "absent") {
                lines.push(build_line(order, image, reasons));
                builds.remove(name);
            }
        }
    }
    match &order.action {
        Action::Start(args) => {
            lines.extend(plan_start(run, order, state, args.recreate, args.restart)?);
        }
        Action::Create if current.is_none() => {
            lines.extend(plan_start(run, order, state, Recreate::Never, false)?);
        }
        Action::Create => lines.push(line("skip", &["exists"])),
        Action::Stop(_) => match current {
            Some(mut info) if info.running => {
                lines.push(line("stop", &["running"]));
                info.running = false;
                state.containers.insert(name.to_string(), Some(info));
            }
            Some(_) => lines.push(line("skip", &["not running"])),
            None => lines.push(line("skip", &["absent"])),
        },
        Action::Remove(_) => match current {
            Some(info) => {
                lines.push(line(
                    "remove",
                    &[if info.running { "running" } else { "stopped" }],
                ));
                state.containers.insert(name.to_string(), None);
            }
            None => lines.push(line("skip", &["absent"])),
        },
        Action::Build if builds.contains_key(name) => {
            if let Some((image, reasons)) = builds.remove(name) {
                lines.push(build_line(order, &image, &reasons));
                state.images.insert(image, Some(String::new()));
            }
        }
        Action::Build => {
            let image = run.spec(name)?.image.clone().unwrap_or_default();
            let present = state.images.get(&image).cloned().flatten().is_some();
            let mut built = line(
                "build",
                &[if present {
                    "when its inputs changed"
                } else {
                    "absent"
                }],
            );
            built.subject.clone_from(&image);
            lines.push(built);
            state.images.insert(image, Some(String::new()));
        }
        Action::Unit(args) => {
            // Its own orders follow this line (`plan_steps`).
            let mut nested = line("unit", &[]);
            nested.subject.clone_from(&args.unit);
            lines.push(nested);
        }
        Action::Tests(args) => {
            for test in &args.tests {
                let mut run = line("test", &["not planned: a test run"]);
                run.subject = test.to_string();
                lines.push(run);
            }
        }
        other => lines.push(line(other.kind(), &[])),
    }
    Ok(lines)
}

/// `run --plan`: one line per order (two where a new container needs its image first); a
/// `unit` order is followed by the lines of the unit command it runs (loaded with the run),
/// each naming that unit command.
pub async fn plan_steps(run: &UnitRun<'_>, steps: &[Step]) -> OrderResult<Vec<PlanLine>> {
    if run.swarm() {
        return Box::pin(super::swarm_preview::plan_steps(run, steps)).await;
    }
    let orders: Vec<&Order> = steps.iter().flat_map(Step::orders).collect();
    let names: BTreeSet<String> = orders
        .iter()
        .filter(|o| o.container != HOST && run.unit.containers.contains_key(&o.container))
        .map(|o| o.container.clone())
        .collect();
    let mut state = inspect(run, &names).await?;
    let mut builds = plan_builds(run, &orders).await?;
    let mut lines = Vec::new();
    for order in orders {
        if let Action::Upgrade(args) = &order.action {
            lines.extend(Box::pin(crate::execute::upgrade::plan_lines(run, args)).await?);
            continue;
        }
        lines.extend(plan_order(run, order, &mut state, &mut builds)?);
        if let Action::Unit(args) = &order.action {
            lines.extend(Box::pin(plan_nested(run, args)).await?);
        }
    }
    Ok(lines)
}

/// The lines of the unit command a `unit` order runs.
async fn plan_nested(run: &UnitRun<'_>, args: &UnitArgs) -> OrderResult<Vec<PlanLine>> {
    let Some(unit) = run.unit.nested_unit(args) else {
        return Err(OrderError::failed(format!(
            "the unit command `{}` was not loaded with the run",
            args.unit
        )));
    };
    let key = unit.command.to_string();
    let mut stack = run.stack.clone();
    stack.push(key.clone());
    let child = UnitRun::new(run.rt, unit, stack);
    let mut lines = plan_steps(&child, &unit.steps).await?;
    for line in &mut lines {
        // A deeper unit keeps its own name.
        line.unit.get_or_insert_with(|| key.clone());
    }
    Ok(lines)
}

/// One container of `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusLine {
    pub unit: String,
    pub container: String,
    /// `absent`, `created`, `running`, `exited`, ...
    pub state: String,
    pub health: Option<String>,
    pub image: String,
    /// `HOST_IP:HOST_PORT->PORT/PROTO`.
    pub ports: Vec<String>,
    /// `configuration changed: env.A`, `image changed`, `not created by dstart`.
    pub drift: Vec<String>,
    /// Swarm mode: running tasks per node (by hostname).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<std::collections::BTreeMap<String, u64>>,
}

/// `status` of the containers of one unit.
pub async fn status(run: &UnitRun<'_>) -> OrderResult<Vec<StatusLine>> {
    if run.swarm() {
        return Box::pin(super::swarm_preview::status(run)).await;
    }
    let names: BTreeSet<String> = run.unit.containers.keys().cloned().collect();
    let state = inspect(run, &names).await?;
    let mut out = Vec::new();
    for name in &names {
        let spec = run.spec(name)?;
        let info = state.containers.get(name).cloned().flatten();
        let image_id = spec
            .image
            .as_ref()
            .and_then(|i| state.images.get(i).cloned().flatten());
        let req = lifecycle::request(run, spec, HashMap::new())?;
        let wanted = Wanted {
            hash: &req.hash,
            keys: &req.keys,
            unit_label: &run.naming.unit_label,
            recreate: Recreate::Auto,
            restart: false,
        };
        let drift = info
            .as_ref()
            .map(|i| plan::drift(i, &wanted, image_id.as_deref()))
            .unwrap_or_default();
        out.push(StatusLine {
            unit: run.naming.unit_label.clone(),
            container: run.display_name(name).to_string(),
            state: info
                .as_ref()
                .map_or_else(|| "absent".to_string(), |i| i.status.clone()),
            health: info.as_ref().and_then(|i| i.health.clone()),
            image: info.as_ref().map_or_else(
                || spec.image.clone().unwrap_or_default(),
                |i| i.image.clone(),
            ),
            ports: info
                .as_ref()
                .map(|i| {
                    i.ports
                        .iter()
                        .map(|(port, ip, host)| format!("{ip}:{host}->{port}"))
                        .collect()
                })
                .unwrap_or_default(),
            drift: drift.iter().map(ToString::to_string).collect(),
            nodes: None,
        });
    }
    Ok(out)
}

/// The `status` table: one line per container, columns padded.
pub fn status_table(lines: &[StatusLine]) -> String {
    let mut rows = vec![[
        "UNIT".to_string(),
        "CONTAINER".into(),
        "STATE".into(),
        "HEALTH".into(),
        "IMAGE".into(),
        "PORTS".into(),
        "DRIFT".into(),
    ]];
    for l in lines {
        let or_dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
        rows.push([
            l.unit.clone(),
            l.container.clone(),
            match &l.nodes {
                Some(nodes) if !nodes.is_empty() => {
                    let per: Vec<String> = nodes.iter().map(|(n, c)| format!("{n}: {c}")).collect();
                    format!("{} ({})", l.state, per.join(", "))
                }
                _ => l.state.clone(),
            },
            or_dash(l.health.clone().unwrap_or_default()),
            or_dash(l.image.clone()),
            or_dash(l.ports.join(",")),
            or_dash(l.drift.join("; ")),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_lines_read_as_the_spec_shows_them() {
        let l = |action: &str, reasons: &[&str]| PlanLine {
            order: "start".into(),
            container: "web".into(),
            action: action.into(),
            reasons: reasons.iter().map(ToString::to_string).collect(),
            unit: None,
            subject: "web".into(),
        };
        assert_eq!(l("create", &["absent"]).text(), "create web (absent)");
        assert_eq!(
            l("keep", &["running", "unchanged"]).text(),
            "keep web (running, unchanged)"
        );
        assert_eq!(l("execute", &[]).text(), "execute web");
        assert_eq!(
            serde_json::to_string(&l("create", &["absent"])).unwrap(),
            r#"{"order":"start","container":"web","action":"create","reasons":["absent"]}"#
        );
        // An order of a nested unit names it.
        let nested = PlanLine {
            unit: Some("db/start".into()),
            ..l("create", &["absent"])
        };
        assert_eq!(nested.text(), "db/start: create web (absent)");
        assert_eq!(
            serde_json::to_string(&nested).unwrap(),
            r#"{"order":"start","container":"web","action":"create","reasons":["absent"],"unit":"db/start"}"#
        );
    }

    #[test]
    fn the_status_table_pads_its_columns() {
        let line = StatusLine {
            unit: "site".into(),
            container: "web".into(),
            state: "running".into(),
            health: None,
            image: "busybox".into(),
            ports: vec!["0.0.0.0:8080->80/tcp".into()],
            drift: vec!["image changed".into()],
            nodes: None,
        };
        assert_eq!(
            status_table(&[line]),
            "UNIT  CONTAINER  STATE    HEALTH  IMAGE    PORTS                 DRIFT\n\
             site  web        running  -       busybox  0.0.0.0:8080->80/tcp  image changed\n"
        );
    }
}
