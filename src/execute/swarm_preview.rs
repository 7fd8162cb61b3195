//! `run --plan` and `status` in swarm mode, from the same decision as `start`
//! ([`crate::plan::decide_service`]). Read only: services, tasks, nodes and images are
//! inspected, nothing is created, updated or removed.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::engine::ServiceInfo;
use crate::engine::service_spec::ServiceRequest;
use crate::execute::preview::{PlanLine, StatusLine};
use crate::execute::{OrderResult, UnitRun, swarm};
use crate::plan::{self, Drift, ServiceDecision, WantedService};
use crate::unit::order::{Action, HOST, Step};

/// `run --plan` in swarm mode: one line per order. `state` follows what the orders before
/// each one did: a service's replica count, `None` once absent.
pub async fn plan_steps(run: &UnitRun<'_>, steps: &[Step]) -> OrderResult<Vec<PlanLine>> {
    let mut observed: HashMap<String, (Option<ServiceInfo>, ServiceRequest)> = HashMap::new();
    let mut state: HashMap<String, Option<u64>> = HashMap::new();
    let mut removed: HashSet<String> = HashSet::new();
    let mut lines = Vec::new();
    for order in steps.iter().flat_map(Step::orders) {
        let name = order.container.as_str();
        let shown = run.display_name(name).to_string();
        let line = |action: &str, reasons: Vec<String>| PlanLine {
            order: order.action.kind().into(),
            container: shown.clone(),
            action: action.into(),
            reasons,
            unit: None,
            subject: shown.clone(),
        };
        if name == HOST || !run.unit.containers.contains_key(name) {
            lines.push(line(order.action.kind(), Vec::new()));
            continue;
        }
        if !observed.contains_key(name) {
            let (info, req) = swarm::observe(run, name).await?;
            state.insert(
                name.to_string(),
                info.as_ref().map(|i| i.replicas.unwrap_or(1)),
            );
            observed.insert(name.to_string(), (info, req));
        }
        let (info, req) = &observed[name];
        let now = state.get(name).copied().flatten();
        match &order.action {
            Action::Start(args) => {
                let decision = if removed.contains(name) {
                    ServiceDecision::Create
                } else {
                    let mut info = info.clone();
                    if let (Some(i), Some(n)) = (info.as_mut(), now) {
                        i.replicas = Some(n);
                    }
                    swarm::decide(run, info.as_ref(), req, args.restart)
                };
                let after = match decision {
                    ServiceDecision::Scale(n) => n,
                    ServiceDecision::Keep | ServiceDecision::Restart | ServiceDecision::Foreign => {
                        now.unwrap_or(req.replicas)
                    }
                    _ => req.replicas,
                };
                lines.push(line(decision.action(), decision.reasons()));
                state.insert(name.to_string(), Some(after));
                removed.remove(name);
            }
            Action::Stop(_) => match now {
                Some(0) => lines.push(line("skip", vec!["scaled to 0".into()])),
                Some(n) => {
                    lines.push(line("stop", vec![format!("scale {n} to 0")]));
                    state.insert(name.to_string(), Some(0));
                }
                None => lines.push(line("skip", vec!["absent".into()])),
            },
            Action::Remove(args) => {
                if now.is_some() {
                    let mut reasons = vec!["the service".to_string()];
                    if args.v {
                        reasons.push("the unit's named volumes".into());
                    }
                    lines.push(line("remove", reasons));
                    state.insert(name.to_string(), None);
                    removed.insert(name.to_string());
                } else {
                    lines.push(line("skip", vec!["absent".into()]));
                }
            }
            other => lines.push(line(other.kind(), Vec::new())),
        }
    }
    Ok(lines)
}

/// `status` in swarm mode: per service its running and desired tasks, the tasks per node, the
/// image and the drift.
pub async fn status(run: &UnitRun<'_>) -> OrderResult<Vec<StatusLine>> {
    let engine = run.engine();
    let mut nodes: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for name in run.unit.containers.keys() {
        let spec = run.spec(name)?;
        let (info, req) = swarm::observe(run, name).await?;
        let Some(info) = info else {
            out.push(StatusLine {
                unit: run.naming.unit_label.clone(),
                container: run.display_name(name).to_string(),
                state: "absent".into(),
                health: None,
                image: spec.image.clone().unwrap_or_default(),
                ports: Vec::new(),
                drift: Vec::new(),
                nodes: None,
            });
            continue;
        };
        let tasks = engine.service_tasks(&info.id).await?;
        let mut per_node: BTreeMap<String, u64> = BTreeMap::new();
        let mut running = 0;
        for t in tasks.iter().filter(|t| t.state == "running") {
            running += 1;
            if !nodes.contains_key(&t.node) {
                let host = engine.node_name(&t.node).await?;
                nodes.insert(t.node.clone(), host);
            }
            *per_node.entry(nodes[&t.node].clone()).or_default() += 1;
        }
        let drift: Vec<Drift> = plan::service_drift(
            &info,
            &WantedService {
                hash: &req.hash,
                keys: &req.keys,
                unit_label: &run.naming.unit_label,
                replicas: req.replicas,
                restart: false,
            },
        );
        let desired = info
            .replicas
            .map_or_else(|| "global".to_string(), |n| n.to_string());
        let state = match info.update_state.as_deref().filter(|s| *s != "completed") {
            Some(update) => format!(
                "{running}/{desired} running, update {}",
                update.replace('_', " ")
            ),
            None => format!("{running}/{desired} running"),
        };
        out.push(StatusLine {
            unit: run.naming.unit_label.clone(),
            container: run.display_name(name).to_string(),
            state,
            health: None,
            image: info
                .image_name
                .clone()
                .unwrap_or_else(|| info.image.clone()),
            ports: info
                .ports
                .iter()
                .map(|(port, published)| format!("*:{published}->{port}"))
                .collect(),
            drift: drift.iter().map(ToString::to_string).collect(),
            nodes: Some(per_node),
        });
    }
    Ok(out)
}
