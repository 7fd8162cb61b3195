//! `backup` and `restore` in swarm mode (SPEC: "Backups run a helper task pinned to the node that holds the
//! volume"): a one-off helper service mounts the container's named volumes on the
//! node of the service's tasks, and the engine's backup and restore (`execute::backup`) work
//! on the helper's container, as on a container's volumes on one engine. With `stop: true`
//! the service is scaled to 0 first and back afterwards.
//!
//! The helper's container must be on the engine dstart talks to (the manager): a volume on
//! another node is refused with what to do (docs/swarm.md).

use std::time::{Duration, Instant};

use crate::engine::service_spec::{HelperVolume, LABEL_REPLICAS, helper_request};
use crate::execute::ownership::Owner;
use crate::execute::{OrderError, OrderResult, UnitRun, backup, run::helper_image, swarm};
use crate::output;
use crate::unit::container::MountSpec;
use crate::unit::order::{BackupArgs, Order, Ready, RestoreArgs};

/// What runs through the helper: a backup or a restore.
#[derive(Clone, Copy)]
enum Work<'a> {
    Backup(&'a BackupArgs),
    Restore(&'a RestoreArgs),
}

impl Work<'_> {
    fn word(self) -> &'static str {
        match self {
            Work::Backup(_) => "backup",
            Work::Restore(_) => "restore",
        }
    }
}

/// `backup` of the named volumes of the service `order.container`.
pub async fn backup(run: &UnitRun<'_>, order: &Order, args: &BackupArgs) -> OrderResult {
    let stop = (args.stop, args.timeout, args.ready.as_ref());
    Box::pin(through_helper(run, order, Work::Backup(args), stop)).await
}

/// `restore` into the named volumes of the service `order.container` (with `stop: true`, the
/// generated restore's, the service is scaled to 0 while the archive is unpacked).
pub async fn restore(run: &UnitRun<'_>, order: &Order, args: &RestoreArgs) -> OrderResult {
    let stop = (args.stop, args.timeout, args.ready.as_ref());
    Box::pin(through_helper(run, order, Work::Restore(args), stop)).await
}

/// Stops the service if `stop.0` says so, runs `work` through a helper task on the node of
/// the service's volumes, removes the helper and starts the service again.
async fn through_helper(
    run: &UnitRun<'_>,
    order: &Order,
    work: Work<'_>,
    stop: (bool, Option<u32>, Option<&Ready>),
) -> OrderResult {
    let (stop, stop_timeout, ready) = stop;
    let name = order.container.as_str();
    let spec = run.spec(name)?;
    let engine = run.engine();
    let service = engine.service(name).await?.ok_or_else(|| {
        OrderError::failed(format!(
            "the service {name} does not exist (start the unit first)"
        ))
    })?;
    let owner = Owner::of(&service.labels, &run.naming.unit_label);
    if !owner.is_unit() {
        run.rt
            .refusals
            .refuse("service", name, "backing up", &owner);
        return Ok(());
    }
    let volumes: Vec<HelperVolume> = spec
        .mounts
        .iter()
        .filter_map(|m| match m {
            MountSpec::Named {
                name: vol,
                container,
                read_only,
            } => Some(HelperVolume {
                volume: vol.clone(),
                path: container.clone(),
                // As the service mounts it: a generated backup takes only the volumes its
                // container writes.
                read_only: *read_only,
            }),
            _ => None,
        })
        .collect();
    if volumes.is_empty() {
        if order.generated {
            output::debug(format!(
                "No named volumes to {} in service {name} (skipped)",
                work.word()
            ));
            return Ok(());
        }
        return Err(OrderError::failed(format!(
            "No named volumes to {} found in service {name}",
            work.word()
        )));
    }
    let tasks = engine.service_tasks(&service.id).await?;
    let node = tasks
        .iter()
        .rev()
        .find(|t| t.desired == "running")
        .or_else(|| tasks.last())
        .map(|t| t.node.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            OrderError::failed(format!(
                "service {name} never ran a task: no node holds its volumes yet"
            ))
        })?;
    let helper_ref = helper_image(run, spec)?;
    let image_id = engine
        .image(&helper_ref)
        .await?
        .map(|i| i.id)
        .ok_or_else(|| {
            OrderError::failed(format!(
                "the helper image `{helper_ref}` is not on the engine"
            ))
        })?;
    let timeout = run.stop_timeout(name, stop_timeout);
    let stopped_from = match service.replicas {
        Some(n) if stop && n > 0 => {
            swarm::stop(run, name, timeout).await?;
            Some(n)
        }
        _ => None,
    };
    let helper = crate::text::docker_name(&format!("{name}-dstart-{}", work.word()));
    let req = helper_request(&helper, &run.naming.unit_label, &image_id, &node, &volumes);
    engine.create_service(req).await?;
    output::debug(format!("Created helper service {helper} on node {node}"));
    let result = Box::pin(work_through(run, order, work, &helper)).await;
    if let Err(e) = engine.remove_service(&helper).await {
        output::warn(
            "swarm",
            format!("could not remove helper service {helper}: {e}"),
        );
    }
    if let Some(n) = stopped_from {
        if let Some(info) = engine.service(name).await? {
            engine
                .scale_service(&info, n, &[(LABEL_REPLICAS, None)])
                .await?;
            output::info(format!("Started service {name} again ({n} replicas)"));
            if let Some(ready) = ready {
                Box::pin(swarm::wait_ready(run, name, ready)).await?;
            }
        }
    }
    result
}

/// Waits for the helper's task, then backs up or restores its volumes through its container
/// as if it were the unit's container (a run of the unit with the helper's container in its
/// place).
async fn work_through(
    run: &UnitRun<'_>,
    order: &Order,
    work: Work<'_>,
    helper: &str,
) -> OrderResult {
    let engine = run.engine();
    let deadline = Instant::now() + Duration::from_secs(60);
    let container = loop {
        let tasks = engine.service_tasks(helper).await?;
        if let Some(t) = tasks.iter().find(|t| t.state == "running") {
            if let Some(c) = t.container.clone() {
                break c;
            }
        }
        if let Some(t) = tasks
            .iter()
            .find(|t| matches!(t.state.as_str(), "rejected" | "failed"))
        {
            return Err(OrderError::failed(format!(
                "the {} helper of {} did not start: {}",
                work.word(),
                order.container,
                t.error.as_deref().unwrap_or(&t.message)
            )));
        }
        if Instant::now() >= deadline {
            return Err(OrderError::failed(format!(
                "the {} helper of {} did not start within 60s",
                work.word(),
                order.container
            )));
        }
        run.rt.interrupt.sleep(Duration::from_millis(200)).await?;
    };
    let info = engine.container(&container).await?.ok_or_else(|| {
        OrderError::hinted(
            format!(
                "the volumes of {} are on another node of the swarm than this engine",
                order.container
            ),
            "dstart archives volumes on the engine it talks to: keep services with data on it (`deploy.placement.constraints: [\"node.role == manager\"]`)",
        )
    })?;
    let mut unit = run.unit.clone();
    let mut stand_in = run.container(&order.container)?.clone();
    stand_in.spec.name.clone_from(&info.name);
    unit.containers.insert(info.name.clone(), stand_in);
    unit.naming
        .display
        .insert(info.name.clone(), order.container.clone());
    let through = UnitRun::new(run.rt, &unit, run.stack.clone());
    // A volume that several containers mount is archived once per generated backup.
    let taken = |r: &UnitRun<'_>| {
        r.generated_volumes
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    };
    if let Ok(mut t) = through.generated_volumes.lock() {
        t.extend(taken(run));
    }
    let mut stand_in_order = order.clone();
    stand_in_order.container.clone_from(&info.name);
    // The service was stopped (or not) above; the helper is not restarted.
    let result = match work {
        Work::Backup(args) => {
            let mut args = args.clone();
            args.stop = false;
            args.ready = None;
            Box::pin(backup::backup(&through, &stand_in_order, &args)).await
        }
        Work::Restore(args) => {
            let mut args = args.clone();
            args.stop = false;
            args.ready = None;
            Box::pin(backup::restore(&through, &stand_in_order, &args)).await
        }
    };
    let after = taken(&through);
    if let Ok(mut t) = run.generated_volumes.lock() {
        t.extend(after);
    }
    result
}
