//! What the test runner needs of a test copy deployed as services (SPEC "Beyond one machine:
//! Docker Swarm", docs/swarm.md "Tests on a swarm"): the container of a service's running task
//! (which daemon checks and `[[...]](KEY)` look at), the end of a job's task, and a `jobs:` run
//! as a one-off service. A test copy's tasks run on the node of this engine
//! ([`swarm::test_node`]), so their containers, ports and logs are this engine's.

use std::time::{Duration, Instant};

use crate::engine::TaskInfo;
use crate::execute::{OrderError, OrderResult, UnitRun, image, swarm};
use crate::output;
use crate::unit::container::{ContainerSpec, RestartPolicy};
use crate::unit::values::Seconds;

/// How often a task's state is looked at.
const POLL: Duration = Duration::from_millis(250);

/// Whether a task has ended for good.
fn ended(task: &TaskInfo) -> bool {
    matches!(
        task.state.as_str(),
        "complete" | "failed" | "rejected" | "shutdown" | "orphaned" | "remove"
    )
}

/// The container of a running task of the service `name` on this engine, or why there is
/// none (no such service, or its newest task's state and message).
pub async fn running_task(run: &UnitRun<'_>, name: &str) -> OrderResult<Result<String, String>> {
    let engine = run.engine();
    let Some(info) = engine.service(name).await? else {
        return Ok(Err(format!(
            "service `{name}` does not exist: was it started?"
        )));
    };
    let tasks = engine.service_tasks(&info.id).await?;
    if let Some(container) = tasks
        .iter()
        .filter(|t| t.state == "running" && t.desired == "running")
        .find_map(|t| t.container.clone())
    {
        return Ok(Ok(container));
    }
    Ok(Err(match tasks.last() {
        None => format!("service `{name}` has no task"),
        Some(t) => format!(
            "service `{name}` has no running task (its newest task is `{}`{}{})",
            t.state,
            if t.message.is_empty() { "" } else { ": " },
            t.error.as_deref().unwrap_or(&t.message)
        ),
    }))
}

/// Waits until the service `name` has a running task (a new service's task is still being
/// scheduled), at most until `deadline`: its container, or why there is none then.
pub async fn wait_running_task(
    run: &UnitRun<'_>,
    name: &str,
    deadline: Instant,
) -> OrderResult<Result<String, String>> {
    loop {
        let found = running_task(run, name).await?;
        if found.is_ok() || Instant::now() >= deadline {
            return Ok(found);
        }
        run.rt.interrupt.sleep(POLL).await?;
    }
}

/// Waits until the first task of the service `name` has ended (at most `timeout`): a job is
/// judged on its first run, whatever its restart policy does next. `None` on a timeout.
pub async fn first_task_end(
    run: &UnitRun<'_>,
    name: &str,
    timeout: Seconds,
) -> OrderResult<Option<TaskInfo>> {
    let engine = run.engine();
    let deadline = Instant::now() + timeout.duration();
    loop {
        let info = engine
            .service(name)
            .await?
            .ok_or_else(|| OrderError::failed(format!("service `{name}` does not exist")))?;
        let tasks = engine.service_tasks(&info.id).await?;
        if let Some(first) = tasks
            .into_iter()
            .min_by(|a, b| a.created_at.cmp(&b.created_at))
        {
            if ended(&first) {
                return Ok(Some(first));
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        run.rt.interrupt.sleep(POLL).await?;
    }
}

/// The end of a one-off task: its exit code and its container (on this engine).
pub struct OnceEnd {
    pub code: i64,
    pub container: Option<String>,
}

/// Runs `spec` once as a one-off service of the test copy (one replica, never restarted, on
/// this engine's node, on the copy's overlay network) and waits at most `timeout` for its task
/// to end. `None` on a timeout. The service stays for its files and output: remove it with
/// [`remove_once`].
pub async fn run_once(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    timeout: Seconds,
) -> OrderResult<Option<OnceEnd>> {
    let mut spec = spec.clone();
    spec.host.restart_policy = Some(RestartPolicy {
        name: "no".into(),
        maximum_retry_count: None,
    });
    spec.deploy.replicas = 1;
    let image_name = spec
        .image
        .clone()
        .ok_or_else(|| OrderError::failed(format!("`{}` has no image", spec.name)))?;
    let info = image::ensure_image(run, &spec, &image_name).await?;
    let node = run.engine().own_node().await?;
    let req = swarm::request(run, &spec, &info.id, Vec::new(), Some(node));
    run.ensure_network().await?;
    remove_once(run, &spec.name).await;
    run.engine().create_service(req).await?;
    output::info(format!("Created the one-off service {}", spec.name));
    let Some(task) = first_task_end(run, &spec.name, timeout).await? else {
        return Ok(None);
    };
    // A task that never ran its command (rejected, shut down) has no exit code to judge.
    match task.exit_code {
        Some(code) if matches!(task.state.as_str(), "complete" | "failed") => Ok(Some(OnceEnd {
            code,
            container: task.container,
        })),
        _ => Err(OrderError::failed(format!(
            "the task of `{}` ended `{}` without an exit code: {}",
            spec.name,
            task.state,
            task.error.as_deref().unwrap_or(&task.message)
        ))),
    }
}

/// Removes the one-off service `name` if it exists (its task's container goes with it).
pub async fn remove_once(run: &UnitRun<'_>, name: &str) {
    match run.engine().remove_service(name).await {
        Ok(()) => output::debug(format!("Removed the one-off service {name}")),
        Err(e) if e.is_not_found() => {}
        Err(e) => output::warn("tests", format!("cannot remove the service {name}: {e}")),
    }
}
