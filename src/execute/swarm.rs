//! Swarm mode (SPEC "Beyond one machine: Docker Swarm"): `start`, `stop` and `remove` of a
//! container as a service on the unit's attachable overlay network. The decisions are
//! [`plan::decide_service`] and [`plan::convergence`]; this file only carries them out.
//!
//! `start` creates the service, updates it (a rolling update as `deploy.update_config` says,
//! start-first by default, so the old tasks serve until the new ones run), scales a stopped one
//! back, or leaves an unchanged one alone without any update call. `stop` scales to 0 and
//! remembers the count in the label `dstart.replicas`; `remove` removes the service (with
//! `v: true` also the unit's named volumes it used, once its tasks are gone).

use std::time::{Duration, Instant};

use std::collections::HashMap;

use sha2::Digest as _;

use crate::engine::convert::{LABEL_CONTAINER, LABEL_UNIT, ResolvedBind};
use crate::engine::service_spec::{
    self, LABEL_REPLICAS, ServiceInput, ServiceRequest, ServiceSecret,
};
use crate::engine::{ServiceInfo, SwarmRole};
use crate::execute::ownership::Owner;
use crate::execute::{OrderError, OrderResult, Runtime, UnitRun, image, resolve_host_path};
use crate::output;
use crate::plan::{self, Convergence, ServiceDecision, WantedService};
use crate::unit::container::{ContainerSpec, MountSpec};
use crate::unit::order::{Ready, RemoveArgs, StartArgs};

/// Refuses a swarm-mode run on an engine that does not manage a swarm, saying what to do.
pub async fn check_manager(rt: &Runtime) -> OrderResult {
    let address = rt.engine.address().to_string();
    match rt.engine.swarm_role().await? {
        SwarmRole::Manager => Ok(()),
        SwarmRole::Worker => Err(OrderError::hinted(
            format!(
                "the engine at {address} is a swarm worker, not a manager: swarm mode deploys through a manager"
            ),
            "point dstart at a manager's engine with `-H` or `--context`, or promote this node with `docker node promote`",
        )),
        SwarmRole::Outside(state) => Err(OrderError::hinted(
            format!(
                "swarm mode, but the engine at {address} is not in a swarm (its swarm state is `{state}`)"
            ),
            "make it a manager with `docker swarm init`, point dstart at a manager's engine with `-H` or `--context`, or run with `--orchestrator engine`",
        )),
    }
}

/// The service spec of `spec` running the image `image_id`, with bind paths resolved and its
/// secrets as `secrets` says.
pub fn request(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    image_id: &str,
    secrets: Vec<ServiceSecret>,
    test_node: Option<String>,
) -> ServiceRequest {
    let mut binds = Vec::new();
    for m in &spec.mounts {
        if let MountSpec::Bind {
            host,
            container,
            read_only,
        } = m
        {
            binds.push(ResolvedBind {
                host: resolve_host_path(run.rt, Some(spec), host)
                    .display()
                    .to_string(),
                container: container.clone(),
                read_only: *read_only,
            });
        }
    }
    service_spec::service_request(
        spec,
        &ServiceInput {
            unit: run.naming.unit_label.clone(),
            network: run.naming.network.clone(),
            alias: run.naming.display.get(&spec.name).cloned(),
            image_id: image_id.to_string(),
            binds,
            secrets,
            test_node,
        },
    )
}

/// The node a test copy's service runs on (see [`ServiceInput::test_node`]): this engine's;
/// `None` for a service of the unit as written.
pub async fn test_node(run: &UnitRun<'_>, name: &str) -> OrderResult<Option<String>> {
    // Only the containers of a test copy answer to another name (their key).
    if !run.naming.display.contains_key(name) {
        return Ok(None);
    }
    let node = run.engine().own_node().await?;
    if node.is_empty() {
        return Err(OrderError::failed(
            "this engine has no node ID in its swarm: the test copy cannot be placed on it",
        ));
    }
    Ok(Some(node))
}

/// The secrets of `spec`, each named on the swarm after the unit, the container, its name and
/// its content (a changed file is a new secret, and the service's update rolls it out). With
/// `create`, the missing ones are created (`start`); without, their IDs are looked up only.
/// The content is never shown.
async fn secrets(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    create: bool,
) -> OrderResult<Vec<ServiceSecret>> {
    let mut out = Vec::new();
    for secret in &spec.secrets {
        let path = resolve_host_path(run.rt, Some(spec), &secret.file);
        let data = std::fs::read(&path).map_err(OrderError::io(format!(
            "reading the secret `{}` of `{}` from {}",
            secret.name,
            spec.name,
            path.display()
        )))?;
        // At most 64 characters: the secret's name (40 at most) and a digest of whose and
        // what it is (the labels say whose).
        let mut hasher = sha2::Sha256::new();
        for part in [
            run.naming.unit_label.as_bytes(),
            spec.name.as_bytes(),
            &data,
        ] {
            hasher.update(part);
            hasher.update([0]);
        }
        let digest = crate::text::hex(&hasher.finalize());
        let swarm_name = format!("{}-{}", secret.name, &digest[..20]);
        let id = if create {
            let labels = HashMap::from([
                (LABEL_UNIT.to_string(), run.naming.unit_label.clone()),
                (LABEL_CONTAINER.to_string(), spec.name.clone()),
            ]);
            run.engine()
                .ensure_secret(&swarm_name, &data, labels)
                .await?
        } else {
            run.engine()
                .secret_id(&swarm_name)
                .await?
                .unwrap_or_default()
        };
        out.push(ServiceSecret {
            name: secret.name.clone(),
            swarm_name,
            id,
        });
    }
    Ok(out)
}

/// Removes the secrets of the unit's container `name` that no service uses any more (those
/// still in use stay: the engine refuses).
async fn prune_secrets(run: &UnitRun<'_>, name: &str, keep: &[ServiceSecret]) {
    let engine = run.engine();
    let labels = [
        (LABEL_UNIT, run.naming.unit_label.as_str()),
        (LABEL_CONTAINER, name),
    ];
    let Ok(all) = engine.secrets_with_labels(&labels).await else {
        return;
    };
    for secret in all {
        if keep.iter().any(|k| k.swarm_name == secret) {
            continue;
        }
        match engine.remove_secret(&secret).await {
            Ok(()) => output::debug(format!("Removed secret {secret}")),
            Err(e) => output::debug(format!("Not removing secret {secret}: {e}")),
        }
    }
}

/// What the swarm holds of `name` and the spec the unit wants, without changing anything
/// (for `run --plan` and `status`): the image ID its reference names now (empty when the
/// image is not on the engine).
pub async fn observe(
    run: &UnitRun<'_>,
    name: &str,
) -> OrderResult<(Option<ServiceInfo>, ServiceRequest)> {
    let spec = run.spec(name)?;
    let image_id = match &spec.image {
        Some(image) => run.engine().image(image).await?.map(|i| i.id),
        None => None,
    };
    let secrets = secrets(run, spec, false).await?;
    let node = test_node(run, name).await?;
    let req = request(
        run,
        spec,
        image_id.as_deref().unwrap_or_default(),
        secrets,
        node,
    );
    Ok((run.engine().service(name).await?, req))
}

/// The decision of `start` for `name` (see [`plan::decide_service`]).
pub fn decide(
    run: &UnitRun<'_>,
    info: Option<&ServiceInfo>,
    req: &ServiceRequest,
    restart: bool,
) -> ServiceDecision {
    plan::decide_service(
        info,
        &WantedService {
            hash: &req.hash,
            keys: &req.keys,
            unit_label: &run.naming.unit_label,
            replicas: req.replicas,
            restart,
        },
    )
}

/// `start` in swarm mode.
pub async fn start(run: &UnitRun<'_>, name: &str, args: &StartArgs) -> OrderResult {
    let spec = run.spec(name)?;
    let image_name = spec
        .image
        .clone()
        .ok_or_else(|| OrderError::failed(format!("container `{name}` has no image")))?;
    let existing = run.engine().service(name).await?;
    if existing.is_some() {
        // `pull: always`, or a build whose inputs changed: the newest image first, so that a
        // changed one updates the service below.
        Box::pin(image::refresh(run, spec, &image_name)).await?;
    }
    let info = image::ensure_image(run, spec, &image_name).await?;
    let secrets = secrets(run, spec, true).await?;
    let node = test_node(run, name).await?;
    let req = request(run, spec, &info.id, secrets.clone(), node);
    let decision = decide(run, existing.as_ref(), &req, args.restart);
    let engine = run.engine();
    match (&decision, &existing) {
        (ServiceDecision::Create, _) | (_, None) => {
            // Named volumes are created by the tasks on their nodes, labelled from the mounts.
            run.ensure_network().await?;
            engine.create_service(req).await?;
            output::info(format!("Created service {name}"));
        }
        (ServiceDecision::Update(drift), Some(old)) => {
            let why: Vec<String> = drift.iter().map(ToString::to_string).collect();
            run.ensure_network().await?;
            warn_all(name, engine.update_service(old, req).await?);
            output::info(format!("Updated service {name} ({})", why.join("; ")));
            prune_secrets(run, name, &secrets).await;
        }
        (ServiceDecision::Scale(n), Some(old)) => {
            warn_all(
                name,
                engine
                    .scale_service(old, *n, &[(LABEL_REPLICAS, None)])
                    .await?,
            );
            output::info(format!("Started service {name} ({n} replicas)"));
        }
        (ServiceDecision::Restart, Some(old)) => {
            warn_all(name, engine.force_update_service(old).await?);
            output::info(format!("Restarted the tasks of service {name}"));
        }
        (ServiceDecision::Keep, Some(_)) => output::debug(format!(
            "Service {name} runs and is unchanged. (skipped)  Add 'restart: true' to the order to restart it."
        )),
        (ServiceDecision::Foreign, Some(old)) => {
            let owner = Owner::of(&old.labels, &run.naming.unit_label);
            output::warn(
                "swarm",
                format!(
                    "service {name} is left as it is: {}, so it cannot be kept in line with the unit",
                    owner.why()
                ),
            );
        }
    }
    if let Some(ready) = &args.ready {
        Box::pin(wait_ready(run, name, ready)).await?;
    }
    Ok(())
}

fn warn_all(name: &str, warnings: Vec<String>) {
    for w in warnings {
        output::warn("engine", format!("updating service {name}: {w}"));
    }
}

/// Waits until every task of the service runs its current spec (and is healthy), then for
/// `ready: log` and `ready: http` as for a container, on one of its tasks' containers.
pub async fn wait_ready(run: &UnitRun<'_>, name: &str, ready: &Ready) -> OrderResult {
    let deadline = Instant::now() + ready.timeout().duration();
    let engine = run.engine();
    let container = loop {
        let info = engine
            .service(name)
            .await?
            .ok_or_else(|| OrderError::failed(format!("service {name} no longer exists")))?;
        let tasks = engine.service_tasks(&info.id).await?;
        match plan::convergence(&info, &tasks) {
            Convergence::Done => {
                break tasks
                    .into_iter()
                    .find(|t| t.desired == "running" && t.spec_hash == info.task_hash)
                    .and_then(|t| t.container);
            }
            Convergence::Failed(why) => {
                return Err(OrderError::failed(format!(
                    "service {name} did not become ready: {why}"
                )));
            }
            Convergence::Waiting(what) => {
                if Instant::now() >= deadline {
                    return Err(OrderError::failed(format!(
                        "service {name} did not become ready within {}s: {what}",
                        ready.timeout()
                    )));
                }
            }
        }
        run.rt.interrupt.sleep(Duration::from_millis(250)).await?;
    };
    match (ready, container) {
        (Ready::Healthy { .. }, _) | (_, None) => {
            output::info(format!("Service {name} is ready (every task runs)"));
            Ok(())
        }
        (other, Some(container)) => {
            crate::execute::lifecycle::wait_ready(run, &container, other, None).await
        }
    }
}

/// `stop` in swarm mode: scales the service to 0, remembering how many tasks it had.
pub async fn stop(run: &UnitRun<'_>, name: &str, timeout: u32) -> OrderResult {
    let engine = run.engine();
    let Some(info) = engine.service(name).await? else {
        output::debug(format!(
            "Trying to stop service {name}, but it has not been created. (skipping)"
        ));
        return Ok(());
    };
    let owner = Owner::of(&info.labels, &run.naming.unit_label);
    if !owner.is_unit() {
        run.rt.refusals.refuse("service", name, "stopping", &owner);
        return Ok(());
    }
    match info.replicas {
        Some(0) => {
            output::debug(format!("Not stopping service {name} as it has no tasks"));
            return Ok(());
        }
        Some(n) => {
            warn_all(
                name,
                engine
                    .scale_service(&info, 0, &[(LABEL_REPLICAS, Some(n.to_string()))])
                    .await?,
            );
        }
        None => {
            return Err(OrderError::failed(format!(
                "service {name} is global: it cannot be scaled to 0"
            )));
        }
    }
    wait_tasks_gone(run, name, &info.id, timeout).await?;
    output::info(format!("Successfully stopped service {name}"));
    Ok(())
}

/// Waits until no task of the service runs (the stop grace period and a minute more).
async fn wait_tasks_gone(run: &UnitRun<'_>, name: &str, id: &str, timeout: u32) -> OrderResult {
    let deadline = Instant::now() + Duration::from_secs(u64::from(timeout) + 60);
    loop {
        let tasks = run.engine().service_tasks(id).await?;
        let running = tasks
            .iter()
            .filter(|t| matches!(t.state.as_str(), "running" | "starting" | "preparing"))
            .count();
        if running == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(OrderError::failed(format!(
                "service {name} still has {running} running task(s) after {}s",
                timeout + 60
            )));
        }
        run.rt.interrupt.sleep(Duration::from_millis(250)).await?;
    }
}

/// `remove` in swarm mode: removes the service; with `v: true` also the named volumes of the
/// unit that it mounted, once its tasks' containers are gone. The overlay network goes with
/// the unit's last service.
pub async fn remove(run: &UnitRun<'_>, name: &str, args: &RemoveArgs) -> OrderResult {
    let engine = run.engine();
    let Some(info) = engine.service(name).await? else {
        output::debug(format!("Not removing service {name} as it did not exist."));
        return Ok(());
    };
    let owner = Owner::of(&info.labels, &run.naming.unit_label);
    if !owner.is_unit() {
        run.rt.refusals.refuse("service", name, "removing", &owner);
        return Ok(());
    }
    engine.remove_service(name).await?;
    output::info(format!("Successfully removed service {name}"));
    let timeout = run.stop_timeout(name, args.timeout);
    wait_containers_gone(run, name, timeout).await?;
    prune_secrets(run, name, &[]).await;
    if args.v {
        remove_volumes(run, name).await?;
    }
    remove_network_if_unused(run).await;
    Ok(())
}

/// Waits until the task containers of a removed service are gone from this engine (they hold
/// its volumes and its network endpoints). The wait is bounded and outlives an interrupt: the
/// teardown of an interrupted test run removes the copy's volumes and network after it.
async fn wait_containers_gone(run: &UnitRun<'_>, name: &str, timeout: u32) -> OrderResult {
    let deadline = Instant::now() + Duration::from_secs(u64::from(timeout) + 60);
    loop {
        let left = run
            .engine()
            .containers_with_labels(&[("com.docker.swarm.service.name", name)])
            .await?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(OrderError::failed(format!(
                "the {} task container(s) of the removed service {name} are still there after {}s",
                left.len(),
                timeout + 60
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Removes the named volumes of the spec of `name` that carry the unit's label (on this
/// engine: a volume on another node of the swarm is removed there).
async fn remove_volumes(run: &UnitRun<'_>, name: &str) -> OrderResult {
    let spec = run.spec(name)?;
    for m in &spec.mounts {
        let MountSpec::Named { name: vol, .. } = m else {
            continue;
        };
        crate::execute::lifecycle::remove_unit_volume(run, vol).await?;
    }
    Ok(())
}

/// Removes the overlay network once the unit has no service left.
async fn remove_network_if_unused(run: &UnitRun<'_>) {
    let engine = run.engine();
    let net = &run.naming.network;
    let unit = run.naming.unit_label.as_str();
    let left = match engine.services_with_labels(&[(LABEL_UNIT, unit)]).await {
        Ok(left) => left,
        Err(e) => {
            output::warn(
                "swarm",
                format!("could not list the services of {unit}: {e}"),
            );
            return;
        }
    };
    if !left.is_empty() {
        return;
    }
    match engine.network_labels(net).await {
        Ok(None) => {}
        Ok(Some(labels)) => {
            let owner = Owner::of(&labels, unit);
            if !owner.is_unit() {
                run.rt.refusals.refuse("network", net, "removing", &owner);
                return;
            }
            match engine.remove_network(net).await {
                Ok(()) => {
                    run.forget_network().await;
                    output::debug(format!("Removed network {net}"));
                }
                Err(e) if e.is_not_found() => run.forget_network().await,
                Err(e) => output::warn("swarm", format!("could not remove network {net}: {e}")),
            }
        }
        Err(e) => output::warn("swarm", format!("could not inspect network {net}: {e}")),
    }
}
