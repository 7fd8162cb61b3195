//! What `start` does with a service in swarm mode, beside [`decide`](super::decide) for
//! containers: a pure function of what the swarm reports and what the unit says, shared by
//! `start`, `run --plan` and `status`.

use std::collections::BTreeMap;

use super::{Drift, Owner, changed_keys};
use crate::engine::convert::{LABEL_HASH, LABEL_KEYS};
use crate::engine::service_spec::LABEL_REPLICAS;
use crate::engine::{ServiceInfo, TaskInfo};

/// What the unit says about the service.
#[derive(Debug, Clone, Copy)]
pub struct WantedService<'a> {
    /// The configuration hash of its spec.
    pub hash: &'a str,
    /// The digests of its configuration keys.
    pub keys: &'a BTreeMap<String, String>,
    /// The unit's `dstart.unit` label value.
    pub unit_label: &'a str,
    /// `deploy.replicas`.
    pub replicas: u64,
    /// `restart: true`.
    pub restart: bool,
}

/// What `start` does with a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceDecision {
    /// Absent: create it.
    Create,
    /// A rolling update to the unit's spec, for these reasons.
    Update(Vec<Drift>),
    /// Stopped (scaled to 0) and unchanged: scale back to this many tasks.
    Scale(u64),
    /// Unchanged, running, `restart: true`: replace its tasks (`service update --force`).
    Restart,
    /// Unchanged and running: nothing to do.
    Keep,
    /// Not created by dstart for this unit: left as it is.
    Foreign,
}

impl ServiceDecision {
    /// The word of `run --plan`.
    pub fn action(&self) -> &'static str {
        match self {
            ServiceDecision::Create => "create",
            ServiceDecision::Update(_) => "update",
            ServiceDecision::Scale(_) => "start",
            ServiceDecision::Restart => "restart",
            ServiceDecision::Keep | ServiceDecision::Foreign => "keep",
        }
    }

    /// Why, as `run --plan` prints it.
    pub fn reasons(&self) -> Vec<String> {
        match self {
            ServiceDecision::Create => vec!["absent".into()],
            ServiceDecision::Update(drift) => drift.iter().map(ToString::to_string).collect(),
            ServiceDecision::Scale(n) => vec![format!(
                "scaled to 0, unchanged: back to {n} replica{}",
                if *n == 1 { "" } else { "s" }
            )],
            ServiceDecision::Restart => vec!["running, restart: true".into()],
            ServiceDecision::Keep => vec!["running".into(), "unchanged".into()],
            ServiceDecision::Foreign => vec![Drift::Foreign.to_string()],
        }
    }
}

/// How a service differs from what the unit wants (what `status` shows as drift). A changed
/// image is its own reason, as for containers.
pub fn service_drift(info: &ServiceInfo, wanted: &WantedService<'_>) -> Vec<Drift> {
    if !Owner::of(&info.labels, wanted.unit_label).is_unit() {
        return vec![Drift::Foreign];
    }
    if info.labels.get(LABEL_HASH).map(String::as_str) == Some(wanted.hash) {
        return Vec::new();
    }
    let old: BTreeMap<String, String> = info
        .labels
        .get(LABEL_KEYS)
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    if old.is_empty() {
        return vec![Drift::Config(Vec::new())];
    }
    let mut keys = changed_keys(&old, wanted.keys);
    let image = keys.iter().any(|k| k == "image");
    keys.retain(|k| k != "image");
    let mut out = Vec::new();
    if !keys.is_empty() {
        out.push(Drift::Config(keys));
    }
    if image {
        out.push(Drift::Image);
    }
    if out.is_empty() {
        // Same keys, another hash: a part of the spec that names no key.
        out.push(Drift::Config(Vec::new()));
    }
    out
}

/// What `start` does with the service (SPEC: a changed spec is a rolling update, an
/// unchanged one a no-op, a stopped one scales back).
pub fn decide_service(
    observed: Option<&ServiceInfo>,
    wanted: &WantedService<'_>,
) -> ServiceDecision {
    let Some(info) = observed else {
        return ServiceDecision::Create;
    };
    let drift = service_drift(info, wanted);
    if drift.contains(&Drift::Foreign) {
        return ServiceDecision::Foreign;
    }
    if !drift.is_empty() {
        return ServiceDecision::Update(drift);
    }
    if info.replicas == Some(0) {
        let back = info
            .labels
            .get(LABEL_REPLICAS)
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(wanted.replicas);
        return ServiceDecision::Scale(back);
    }
    if wanted.restart {
        ServiceDecision::Restart
    } else {
        ServiceDecision::Keep
    }
}

/// Where a service stands on its way to what its spec says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Convergence {
    /// Every task it wants runs its current spec (and is healthy: a task with a health check
    /// is `starting` until it is); no update is under way.
    Done,
    /// Not yet: what it waits for.
    Waiting(String),
    /// It will not get there by waiting.
    Failed(String),
}

/// Whether `info` has converged, from its tasks (pure: `ready:` polls it).
pub fn convergence(info: &ServiceInfo, tasks: &[TaskInfo]) -> Convergence {
    match info.update_state.as_deref() {
        Some("paused" | "rollback_started" | "rollback_paused" | "rollback_completed") => {
            return Convergence::Failed(format!(
                "its update is {}{}",
                info.update_state
                    .as_deref()
                    .unwrap_or_default()
                    .replace('_', " "),
                info.update_message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
        }
        Some("updating") => return Convergence::Waiting("its update is under way".into()),
        _ => {}
    }
    let wanted = info.replicas.unwrap_or(1);
    let current: Vec<&TaskInfo> = tasks
        .iter()
        .filter(|t| t.desired == "running" && t.spec_hash == info.task_hash)
        .collect();
    if let Some(t) = current.iter().find(|t| t.state == "rejected") {
        return Convergence::Failed(format!(
            "a task was rejected: {}",
            t.error.as_deref().unwrap_or(&t.message)
        ));
    }
    let running = current.iter().filter(|t| t.state == "running").count() as u64;
    let stale = tasks
        .iter()
        .filter(|t| t.desired == "running" && t.spec_hash != info.task_hash)
        .count();
    if running == wanted && stale == 0 {
        return Convergence::Done;
    }
    let last_error = tasks
        .iter()
        .filter(|t| t.spec_hash == info.task_hash)
        .filter_map(|t| t.error.as_deref())
        .next_back()
        .map(|e| format!(" (last task error: {e})"))
        .unwrap_or_default();
    Convergence::Waiting(format!(
        "{running} of {wanted} task{} running{last_error}",
        if wanted == 1 { "" } else { "s" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(replicas: u64, labels: &[(&str, &str)]) -> ServiceInfo {
        ServiceInfo {
            replicas: Some(replicas),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
            ..ServiceInfo::default()
        }
    }

    /// (replicas and labels of the service, `restart: true`, the decision).
    type Row<'a> = (
        Option<(u64, &'a Vec<(&'a str, &'a str)>)>,
        bool,
        ServiceDecision,
    );

    #[test]
    fn start_decides_from_the_swarm_and_the_unit() {
        let keys: BTreeMap<String, String> = [("env.A", "1"), ("image", "2"), ("replicas", "1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let old_keys = r#"{"env.A":"0","image":"1","replicas":"1"}"#;
        let same_image = r#"{"env.A":"0","image":"2","replicas":"1"}"#;
        let ours = |hash: &'static str, keys: &'static str| {
            vec![
                ("dstart.unit", "site"),
                (LABEL_HASH, hash),
                (LABEL_KEYS, keys),
            ]
        };
        let same = ours("h", old_keys);
        let changed = ours("x", old_keys);
        let changed_env = ours("x", same_image);
        let unkeyed = ours("x", "");
        let mut stopped = ours("h", old_keys);
        stopped.push((LABEL_REPLICAS, "3"));
        let foreign = vec![("maintainer", "someone")];
        let other_unit = vec![("dstart.unit", "shop"), (LABEL_HASH, "h")];
        let config = |k: &[&str]| Drift::Config(k.iter().map(ToString::to_string).collect());
        let table: Vec<Row<'_>> = vec![
            (None, false, ServiceDecision::Create),
            (None, true, ServiceDecision::Create),
            (Some((1, &same)), false, ServiceDecision::Keep),
            (Some((2, &same)), false, ServiceDecision::Keep),
            (Some((1, &same)), true, ServiceDecision::Restart),
            (Some((0, &same)), false, ServiceDecision::Scale(2)),
            (Some((0, &stopped)), true, ServiceDecision::Scale(3)),
            (
                Some((1, &changed)),
                false,
                ServiceDecision::Update(vec![config(&["env.A"]), Drift::Image]),
            ),
            (
                Some((0, &changed_env)),
                true,
                ServiceDecision::Update(vec![config(&["env.A"])]),
            ),
            (
                Some((1, &unkeyed)),
                false,
                ServiceDecision::Update(vec![config(&[])]),
            ),
            (Some((1, &foreign)), true, ServiceDecision::Foreign),
            (Some((0, &other_unit)), false, ServiceDecision::Foreign),
        ];
        for (i, (state, restart, expected)) in table.into_iter().enumerate() {
            let info = state.map(|(n, labels)| service(n, labels));
            let wanted = WantedService {
                hash: "h",
                keys: &keys,
                unit_label: "site",
                replicas: 2,
                restart,
            };
            assert_eq!(decide_service(info.as_ref(), &wanted), expected, "row {i}");
        }
    }

    #[test]
    fn convergence_waits_for_every_task_of_the_current_spec() {
        let info = |replicas: u64, update: Option<&str>| ServiceInfo {
            replicas: Some(replicas),
            task_hash: "new".into(),
            update_state: update.map(str::to_string),
            update_message: update.map(|_| "task failed".to_string()),
            ..ServiceInfo::default()
        };
        let task = |hash: &str, desired: &str, state: &str, err: Option<&str>| TaskInfo {
            spec_hash: hash.into(),
            desired: desired.into(),
            state: state.into(),
            error: err.map(str::to_string),
            ..TaskInfo::default()
        };
        let run_new = task("new", "running", "running", None);
        let start_new = task("new", "running", "starting", None);
        let run_old = task("old", "running", "running", None);
        let gone_old = task("old", "shutdown", "shutdown", None);
        let failed = task("new", "shutdown", "failed", Some("exit 1"));
        let rejected = task("new", "running", "rejected", Some("No such image: x"));
        let waiting = |s: &str| Convergence::Waiting(s.into());
        for (i, (service, tasks, want)) in vec![
            (info(1, None), vec![run_new.clone()], Convergence::Done),
            (
                info(1, Some("completed")),
                vec![gone_old.clone(), run_new.clone()],
                Convergence::Done,
            ),
            (info(0, None), vec![gone_old.clone()], Convergence::Done),
            (
                info(2, None),
                vec![run_new.clone(), start_new.clone()],
                waiting("1 of 2 tasks running"),
            ),
            (
                info(1, None),
                vec![run_old.clone(), start_new],
                waiting("0 of 1 task running"),
            ),
            (
                info(1, None),
                vec![run_old, run_new.clone()],
                waiting("1 of 1 task running"),
            ),
            (
                info(1, None),
                vec![failed],
                waiting("0 of 1 task running (last task error: exit 1)"),
            ),
            (
                info(1, Some("updating")),
                vec![run_new.clone()],
                waiting("its update is under way"),
            ),
            (
                info(1, Some("rollback_completed")),
                vec![run_new],
                Convergence::Failed("its update is rollback completed: task failed".into()),
            ),
            (
                info(1, None),
                vec![rejected],
                Convergence::Failed("a task was rejected: No such image: x".into()),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(convergence(&service, &tasks), want, "row {i}");
        }
    }

    #[test]
    fn decisions_read_as_plan_lines() {
        for (d, action, reasons) in [
            (ServiceDecision::Create, "create", "absent"),
            (
                ServiceDecision::Update(vec![Drift::Config(vec!["env.A".into()]), Drift::Image]),
                "update",
                "configuration changed: env.A; image changed",
            ),
            (
                ServiceDecision::Scale(1),
                "start",
                "scaled to 0, unchanged: back to 1 replica",
            ),
            (
                ServiceDecision::Restart,
                "restart",
                "running, restart: true",
            ),
            (ServiceDecision::Keep, "keep", "running; unchanged"),
            (ServiceDecision::Foreign, "keep", "not created by dstart"),
        ] {
            assert_eq!(d.action(), action);
            assert_eq!(d.reasons().join("; "), reasons);
        }
    }
}
