//! `create`, `start`, `stop` and `remove` (ORIGINAL §3, SPEC "Orders").
//!
//! `start` is idempotent: a running container with an unchanged configuration is left alone. A
//! changed configuration (the `dstart.config-hash` label) or image recreates the container,
//! carrying its anonymous volumes over; `recreate: never` keeps it. `remove` refuses a
//! container with volumes of its own unless `v: true`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use crate::checks::http::{HttpCheck, request_limit};
use crate::engine::convert::{self, ConvertInput, CreateRequest, LABEL_UNIT, ResolvedBind};
use crate::engine::{ContainerInfo, Created, EngineError, MountInfo};
use crate::execute::ownership::Owner;
use crate::execute::{OrderError, OrderResult, Tail, UnitRun, image, resolve_host_path};
use crate::output;
use crate::plan::{self, Decision, Drift, Next, Observed, Wanted};
use crate::unit::container::{ContainerSpec, MountSpec};
use crate::unit::order::{Ready, RemoveArgs, StartArgs};

/// The create request of `spec`, with bind paths resolved and checked.
#[allow(clippy::implicit_hasher)]
pub fn request(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    carried: HashMap<String, String>,
) -> OrderResult<CreateRequest> {
    let mut binds = Vec::new();
    for m in &spec.mounts {
        if let MountSpec::Bind {
            host,
            container,
            read_only,
        } = m
        {
            let path = resolve_host_path(run.rt, Some(spec), host);
            if !path.exists() {
                return Err(OrderError::failed(format!(
                    "the path `{}` to bind to `{container}` does not exist (from `{host}`; relative paths are relative to the configuration directory)",
                    path.display()
                )));
            }
            binds.push(ResolvedBind {
                host: path.display().to_string(),
                container: container.clone(),
                read_only: *read_only,
            });
        }
    }
    let input = ConvertInput {
        unit: run.naming.unit_label.clone(),
        network: spec.on_unit_network().then(|| run.naming.network.clone()),
        binds,
        carried_volumes: carried,
        alias: run.naming.display.get(&spec.name).cloned(),
    };
    Ok(convert::create_request(spec, &input))
}

/// Prepares what a container needs on the engine: the unit network and its named volumes.
async fn prepare(run: &UnitRun<'_>, spec: &ContainerSpec) -> OrderResult {
    if spec.on_unit_network() {
        run.ensure_network().await?;
    }
    for m in &spec.mounts {
        if let MountSpec::Named { name, .. } = m {
            run.ensure_volume(name, &spec.name).await?;
        }
    }
    Ok(())
}

/// Refuses, before creating anything, a container whose image declares a mandatory
/// environment variable (`api.ENV.<NAME>.mandatory=true`) that the spec does not set.
fn check_mandatory_env(spec: &ContainerSpec, labels: &HashMap<String, String>) -> OrderResult {
    let mut missing: Vec<String> = labels
        .iter()
        .filter(|(_, v)| v.eq_ignore_ascii_case("true"))
        // As `apidoc.rs` reads them: `api.ENV.mandatory` names no variable (slicing it panicked).
        .filter_map(|(k, _)| k.strip_prefix("api.ENV.")?.strip_suffix(".mandatory"))
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .filter(|name| !spec.env.iter().any(|(k, _)| k == name))
        .collect();
    missing.sort();
    if missing.is_empty() {
        return Ok(());
    }
    let described: Vec<String> = missing
        .iter()
        .map(|m| match labels.get(&format!("api.ENV.{m}.description")) {
            Some(d) if !d.is_empty() => format!("`{m}` ({d})"),
            _ => format!("`{m}`"),
        })
        .collect();
    Err(OrderError::failed(format!(
        "the image of `{}` needs the environment variable{} {}, which the container spec does not set",
        spec.name,
        if missing.len() == 1 { "" } else { "s" },
        described.join(", ")
    )))
}

/// Creates the container unless it exists. Returns whether it was created.
pub async fn create(run: &UnitRun<'_>, name: &str) -> OrderResult<bool> {
    let spec = run.spec(name)?;
    if run.engine().container(name).await?.is_some() {
        output::debug(format!(
            "The container {name} seems to exist already (skipped)."
        ));
        return Ok(false);
    }
    let req = request(run, spec, HashMap::new())?;
    create_with(run, spec, req).await?;
    output::info(format!("Successfully created the container {name}"));
    Ok(true)
}

/// Creates `spec` from `req`, building or pulling its image first when it is missing.
async fn create_with(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    req: CreateRequest,
) -> OrderResult<String> {
    let image_name = spec
        .image
        .clone()
        .ok_or_else(|| OrderError::failed(format!("container `{}` has no image", spec.name)))?;
    let info = image::ensure_image(run, spec, &image_name).await?;
    create_from(run, spec, req, &image_name, &info).await
}

/// Creates `spec` from `req` on the image `info` (named `image_name`) as it is.
async fn create_from(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    req: CreateRequest,
    image_name: &str,
    info: &crate::engine::ImageInfo,
) -> OrderResult<String> {
    check_mandatory_env(spec, &info.labels)?;
    prepare(run, spec).await?;
    output::debug(format!(
        "set creation fields for 'name' and 'image' to {} and {image_name}",
        spec.name
    ));
    let created = run.engine().create_container(&spec.name, req).await?;
    log_created(&spec.name, &created);
    Ok(created.id)
}

/// The engine's answer to a create (ORIGINAL §7.3): the ID as Docker output, its warnings
/// (a discarded port binding, an unsupported limit) as warnings.
pub fn log_created(name: &str, created: &Created) {
    output::output(
        1,
        format!("Created container {name} with Id {}", created.id),
    );
    for warning in &created.warnings {
        output::warn("engine", format!("creating container {name}: {warning}"));
    }
}

/// The ID the image reference of `spec` names now (`None`: no image, or not on the engine).
pub async fn current_image_id(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
) -> OrderResult<Option<String>> {
    let Some(image_name) = &spec.image else {
        return Ok(None);
    };
    Ok(run.engine().image(image_name).await?.map(|i| i.id))
}

/// Why a container is recreated, as the log line says it.
fn because(drift: &Drift, spec: &ContainerSpec) -> String {
    match drift {
        Drift::Config(keys) if keys.is_empty() => "its configuration changed".into(),
        Drift::Config(keys) => format!("its configuration changed ({})", keys.join(", ")),
        Drift::Image => format!(
            "its image `{}` changed",
            spec.image.as_deref().unwrap_or_default()
        ),
        Drift::Always => "`recreate: always` is set".into(),
        Drift::Foreign => "it was not created by dstart".into(),
    }
}

/// `start`: inspects, decides ([`plan::decide`]), then carries the decision out.
pub async fn start(run: &UnitRun<'_>, name: &str, args: &StartArgs) -> OrderResult {
    let spec = run.spec(name)?;
    let req = request(run, spec, HashMap::new())?;
    let existing = run.engine().container(name).await?;
    let mut image_id = None;
    if existing.is_some() {
        // `pull: always`, or a build whose inputs changed: the newest image first, so that a
        // changed one recreates below.
        if let Some(image) = &spec.image {
            Box::pin(image::refresh(run, spec, image)).await?;
        }
        image_id = current_image_id(run, spec).await?;
    }
    let decision = plan::decide(
        &Observed {
            container: existing.as_ref(),
            image_id: image_id.as_deref(),
        },
        &Wanted {
            hash: &req.hash,
            keys: &req.keys,
            unit_label: &run.naming.unit_label,
            recreate: args.recreate,
            restart: args.restart,
        },
    );
    let mut started = false;
    // Where the output of the run this order starts (or finds) begins; `None`: a container
    // that never ran, all of its output.
    let mut after = None;
    let next = match (&decision, &existing) {
        (Decision::Create, _) | (_, None) => {
            output::debug(format!(
                "Cannot start the container {name}.  Trying to create it."
            ));
            create_with(run, spec, req).await?;
            output::info(format!("Successfully created the container {name}."));
            None
        }
        (Decision::Recreate(why), Some(info)) => {
            let reason = why
                .iter()
                .map(|d| because(d, spec))
                .collect::<Vec<_>>()
                .join(" and ");
            let timeout = run.stop_timeout(name, args.timeout);
            Box::pin(recreate(run, spec, info, &reason, timeout, None)).await?;
            None
        }
        (Decision::Existing { next, kept }, Some(_)) => {
            if !kept.is_empty() {
                output::debug(format!(
                    "Container {name} differs from its spec, but `recreate: never` keeps it"
                ));
            }
            Some(*next)
        }
        (Decision::Foreign(next), Some(info)) => {
            let owner = Owner::of(&info.labels, &run.naming.unit_label);
            output::warn(
                "lifecycle",
                format!(
                    "container {name} is started as it is: {}, so it cannot be kept in line with the unit (never recreated)",
                    owner.why()
                ),
            );
            Some(*next)
        }
    };
    match (next, existing) {
        (None, _) | (_, None) => {
            start_now(run, name).await?;
            started = true;
        }
        (Some(next), Some(info)) => {
            join_unit_network(run, spec, &info).await?;
            match next {
                Next::Keep => {
                    output::debug(format!(
                        "Container {name} is already started. (skipped)  Add 'restart: true' to the order to restart it."
                    ));
                    after = previous_run_end(&info);
                }
                Next::Restart => {
                    // A restart is a stop and a start, as the engine does it; stopping first
                    // tells exactly where the output of the old run ends.
                    let timeout = run.stop_timeout(name, args.timeout);
                    run.engine().stop_container(name, timeout).await?;
                    after = run
                        .engine()
                        .container(name)
                        .await?
                        .and_then(|i| previous_run_end(&i));
                    start_now(run, name).await?;
                    started = true;
                }
                Next::Start => {
                    after = previous_run_end(&info);
                    start_now(run, name).await?;
                    started = true;
                }
            }
        }
    }
    if started && args.attach {
        attach(run, name, after).await?;
    }
    if let Some(ready) = &args.ready {
        wait_ready(run, name, ready, after).await?;
    }
    Ok(())
}

/// Connects an existing container that another unit created to this unit's network, so the
/// containers of this unit reach it by its key.
async fn join_unit_network(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    info: &ContainerInfo,
) -> OrderResult {
    if !spec.on_unit_network() || info.networks.iter().any(|(n, _)| *n == run.naming.network) {
        return Ok(());
    }
    run.ensure_network().await?;
    run.engine()
        .connect_network(&run.naming.network, &spec.name, vec![spec.name.clone()])
        .await?;
    output::debug(format!(
        "Connected container {} to network {}",
        spec.name, run.naming.network
    ));
    Ok(())
}

async fn start_now(run: &UnitRun<'_>, name: &str) -> OrderResult {
    run.engine().start_container(name).await?;
    output::info(format!("Started container {name}"));
    Ok(())
}

/// `upgrade` of one container (SPEC "Generated commands"): re-creates the running container
/// `old` on the image its reference names now (`image`, as it is: nothing is built or pulled),
/// carrying its anonymous volumes over, starts it and waits for `ready`.
pub async fn upgrade(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    old: &ContainerInfo,
    image: crate::engine::ImageInfo,
    ready: Option<&Ready>,
    timeout: u32,
) -> OrderResult {
    let name = spec.name.as_str();
    let reason = because(&Drift::Image, spec);
    Box::pin(recreate(run, spec, old, &reason, timeout, Some(image))).await?;
    start_now(run, name).await?;
    if let Some(ready) = ready {
        wait_ready(run, name, ready, None).await?;
    }
    Ok(())
}

/// Replaces the container by one made from the current spec; its anonymous volumes are mounted
/// into the new one, so no data is lost. The old container gets `timeout` seconds to stop. On
/// failure the old container is put back. `image`: create on this image as it is, instead of
/// making the spec's image first (built when its inputs changed, or pulled).
async fn recreate(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    old: &ContainerInfo,
    reason: &str,
    timeout: u32,
    image: Option<crate::engine::ImageInfo>,
) -> OrderResult {
    let name = spec.name.as_str();
    let engine = run.engine();
    let carried: HashMap<String, String> = old
        .mounts
        .iter()
        .filter(|m| m.is_anonymous_volume())
        .filter_map(|m| m.name.clone().map(|n| (m.destination.clone(), n)))
        .collect();
    let req = request(run, spec, carried)?;
    let short: String = old.id.chars().take(12).collect();
    let parked = format!("{name}_dstart_old_{short}");
    if old.running {
        engine.stop_container(name, timeout).await?;
    }
    engine.rename_container(name, &parked).await?;
    let created = match (&image, &spec.image) {
        (Some(info), Some(image_name)) => create_from(run, spec, req, image_name, info).await,
        _ => create_with(run, spec, req).await,
    };
    match created {
        Ok(_) => {
            if let Err(e) = engine.remove_container(&parked, false, true).await {
                output::warn(
                    "lifecycle",
                    format!("could not remove the replaced container {parked}: {e}"),
                );
            }
            output::info(format!("Recreated container {name} because {reason}"));
            Ok(())
        }
        Err(e) => {
            // Put the old container back as it was.
            let _ = engine.remove_container(name, false, true).await;
            if let Err(back) = engine.rename_container(&parked, name).await {
                output::error(
                    "lifecycle",
                    format!("could not rename {parked} back to {name}: {back}"),
                );
            } else if old.running {
                let _ = engine.start_container(name).await;
            }
            Err(e)
        }
    }
}

/// When the container's last run ended, as an inspect taken while it is not in the run that
/// follows tells (for a running container: the run before the current one). The engine has
/// logged every line of a run when it marks the run ended, so the output after this instant
/// is the next run's. `None` before the first end.
pub fn previous_run_end(info: &ContainerInfo) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(&info.finished_at)
        .ok()
        .map(|t| t.to_utc())
        // `0001-01-01T00:00:00Z`: it never ended.
        .filter(|t| t.timestamp() > 0)
}

/// Follows the output of a just started container (logged `after` the previous run ended)
/// until it exits; fails on a non-zero exit.
async fn attach(
    run: &UnitRun<'_>,
    name: &str,
    after: Option<chrono::DateTime<chrono::Utc>>,
) -> OrderResult {
    let engine = run.engine();
    let mut stream = engine.logs_after(name, true, after);
    let mut tail = Tail::new(10);
    let follow = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            for line in tail.push(&chunk.data) {
                output::output(1, line);
            }
        }
        if let Some(line) = tail.finish() {
            output::output(1, line);
        }
        Ok::<(), OrderError>(())
    };
    let Ok(followed) = run.rt.interrupt.race(follow).await else {
        let _ = engine.stop_container(name, 0).await;
        return Err(OrderError::Interrupted);
    };
    followed?;
    let code = engine.wait_container(name).await?;
    if code != 0 {
        return Err(OrderError::failed(format!(
            "Container {name} stopped with exit code {code}!{}",
            tail.render()
        )));
    }
    output::info(format!("Container {name} finished with exit code 0"));
    Ok(())
}

/// The last lines of a container's output, for an error message.
pub async fn last_lines(run: &UnitRun<'_>, name: &str, n: usize) -> String {
    let mut stream = run.engine().logs(name, false, 0, Some(n));
    let mut tail = Tail::new(n);
    let mut broken = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => {
                tail.push(&chunk.data);
            }
            // Said, not swallowed: the lines shown may not be the last ones.
            Err(e) => {
                broken = Some(e);
                break;
            }
        }
    }
    tail.finish();
    match broken {
        Some(e) => format!(
            "{}\n(the logs could not be read to their end: {e})",
            tail.render()
        ),
        None => tail.render(),
    }
}

/// Resolves once `name` no longer runs (it is checked twice a second), with its last state
/// (`None`: it is gone).
async fn stopped_running(
    run: &UnitRun<'_>,
    name: &str,
) -> Result<Option<ContainerInfo>, OrderError> {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match run.engine().container(name).await? {
            Some(info) if info.running => {}
            other => return Ok(other),
        }
    }
}

/// What one HTTP check of a running container came to.
pub enum Probe {
    /// The check's answer: passed, or why not.
    Answered(Result<(), String>),
    /// The container stopped running first: its last state (`None`: it is gone).
    Stopped(Option<Box<ContainerInfo>>),
}

/// Runs `check` once against the running container `name`. A request may hang until `limit`
/// and the container may exit meanwhile, so its state is watched beside it; an interrupt ends
/// both.
pub async fn probe(
    run: &UnitRun<'_>,
    name: &str,
    check: &HttpCheck,
    client: &reqwest::Client,
    limit: Duration,
) -> OrderResult<Probe> {
    let raced = async {
        tokio::select! {
            answer = check.run(client, limit) => Ok(Probe::Answered(answer)),
            state = stopped_running(run, name) => state.map(|s| Probe::Stopped(s.map(Box::new))),
        }
    };
    run.rt.interrupt.race(raced).await?
}

/// Waits until the container is ready; fails at once if it exits meanwhile. `after`: where the
/// output of its current run begins (see [`previous_run_end`]).
pub async fn wait_ready(
    run: &UnitRun<'_>,
    name: &str,
    ready: &Ready,
    after: Option<chrono::DateTime<chrono::Utc>>,
) -> OrderResult {
    let deadline = Instant::now() + ready.timeout().duration();
    let engine = run.engine();
    let exited = |info: &Option<ContainerInfo>| -> Option<String> {
        match info {
            None => Some("it no longer exists".to_string()),
            Some(i) if !i.running => Some(format!("it exited with code {}", i.exit_code)),
            Some(_) => None,
        }
    };
    match ready {
        Ready::Log { pattern, .. } => {
            let re = pattern.regex();
            // Only the current run: after a restart, the line of the previous run does not
            // count.
            let mut stream = engine.logs_after(name, true, after);
            let mut tail = Tail::new(10);
            let watch = async {
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    for line in tail.push(&chunk.data) {
                        if re.is_match(&line) {
                            return Ok(true);
                        }
                    }
                }
                Ok::<bool, OrderError>(tail.finish().is_some_and(|l| re.is_match(&l)))
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            let outcome = run
                .rt
                .interrupt
                .race(tokio::time::timeout(remaining, watch))
                .await?;
            match outcome {
                Ok(Ok(true)) => {
                    output::info(format!(
                        "Container {name} is ready (its output matched `{pattern}`)"
                    ));
                    Ok(())
                }
                Ok(Ok(false)) => {
                    let why = exited(&engine.container(name).await?)
                        .unwrap_or_else(|| "its output ended".into());
                    Err(OrderError::failed(format!(
                        "container {name} did not become ready: {why} before its output matched `{pattern}`{}",
                        tail.render()
                    )))
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(OrderError::failed(format!(
                    "container {name} did not become ready within {}s: its output never matched `{pattern}`{}",
                    ready.timeout(),
                    tail.render()
                ))),
            }
        }
        Ready::Http {
            url,
            status,
            body_match,
            cert,
            ..
        } => {
            let url = crate::execute::substitute::substitute_text(run, url, name).await?;
            let check = HttpCheck {
                method: "GET".into(),
                url: url.clone(),
                status: *status,
                body_match: body_match.clone(),
                error_match: None,
                cert: cert.as_ref().map(|c| resolve_host_path(run.rt, None, c)),
                headers: Vec::new(),
                body: None,
            };
            let client = check.client().map_err(OrderError::failed)?;
            let mut last = String::new();
            loop {
                let mut gone = exited(&engine.container(name).await?);
                if gone.is_none() {
                    let limit = request_limit(deadline.saturating_duration_since(Instant::now()));
                    match probe(run, name, &check, &client, limit).await? {
                        Probe::Answered(Ok(())) => {
                            output::info(format!(
                                "Container {name} is ready ({url} answered {status})"
                            ));
                            return Ok(());
                        }
                        Probe::Answered(Err(e)) => last = e,
                        Probe::Stopped(state) => gone = exited(&state.map(|s| *s)),
                    }
                }
                if let Some(why) = gone {
                    return Err(OrderError::failed(format!(
                        "container {name} did not become ready: {why}{}",
                        last_lines(run, name, 10).await
                    )));
                }
                if Instant::now() >= deadline {
                    return Err(OrderError::failed(format!(
                        "container {name} did not become ready within {}s: {last}",
                        ready.timeout()
                    )));
                }
                run.rt.interrupt.sleep(Duration::from_millis(250)).await?;
            }
        }
        Ready::Healthy { .. } => loop {
            let info = engine.container(name).await?;
            if let Some(why) = exited(&info) {
                return Err(OrderError::failed(format!(
                    "container {name} did not become healthy: {why}{}",
                    last_lines(run, name, 10).await
                )));
            }
            let health = info.and_then(|i| i.health);
            match health.as_deref() {
                None => {
                    return Err(OrderError::failed(format!(
                        "`ready: healthy` on {name}, but its image has no HEALTHCHECK (and the spec sets no `creation.healthcheck`)"
                    )));
                }
                Some("healthy") => {
                    output::info(format!("Container {name} is healthy"));
                    return Ok(());
                }
                Some(other) => {
                    if Instant::now() >= deadline {
                        return Err(OrderError::failed(format!(
                            "container {name} did not become healthy within {}s (it is {other})",
                            ready.timeout()
                        )));
                    }
                }
            }
            run.rt.interrupt.sleep(Duration::from_millis(250)).await?;
        },
    }
}

/// `stop`.
pub async fn stop(run: &UnitRun<'_>, name: &str, timeout: u32) -> OrderResult {
    match run.engine().container(name).await? {
        None => output::debug(format!(
            "Trying to stop container {name}, but it has not been created. (skipping)"
        )),
        Some(info) if info.running => {
            run.engine().stop_container(name, timeout).await?;
            output::info(format!("Successfully stopped container {name}"));
        }
        Some(_) => output::debug(format!(
            "Not stopping container {name} as it was not running"
        )),
    }
    Ok(())
}

/// The volume mounts (named and anonymous) of a container that are not shared in through
/// `volumes_from`.
pub async fn own_volume_mounts(
    run: &UnitRun<'_>,
    info: &ContainerInfo,
) -> OrderResult<Vec<MountInfo>> {
    let mut inherited = Vec::new();
    for source in &info.volumes_from {
        let source = crate::unit::container::strip_mode(source);
        if let Some(other) = run.engine().container(source).await? {
            inherited.extend(other.mounts.into_iter().filter_map(|m| m.name));
        }
    }
    Ok(info
        .mounts
        .iter()
        .filter(|m| m.kind == "volume")
        .filter(|m| m.name.as_ref().is_none_or(|n| !inherited.contains(n)))
        .cloned()
        .collect())
}

/// The container's own volumes: anonymous volumes not shared in through `volumes_from`.
async fn own_volumes(run: &UnitRun<'_>, info: &ContainerInfo) -> OrderResult<Vec<String>> {
    Ok(own_volume_mounts(run, info)
        .await?
        .into_iter()
        .filter(MountInfo::is_anonymous_volume)
        .filter_map(|m| m.name)
        .collect())
}

/// `remove`.
pub async fn remove(run: &UnitRun<'_>, name: &str, args: &RemoveArgs) -> OrderResult {
    let engine = run.engine();
    let Some(info) = engine.container(name).await? else {
        output::debug(format!(
            "Not removing container {name} as it did not exist."
        ));
        return Ok(());
    };
    let owner = Owner::of(&info.labels, &run.naming.unit_label);
    if !owner.is_unit() {
        // Nor its anonymous volumes: someone else's data.
        run.rt
            .refusals
            .refuse("container", name, "removing", &owner);
        return Ok(());
    }
    let own = own_volumes(run, &info).await?;
    if !args.v && !own.is_empty() {
        output::info(format!(
            "Not removing container {name} as it has volumes attached to it."
        ));
        return Ok(());
    }
    if info.running {
        engine
            .stop_container(name, run.stop_timeout(name, args.timeout))
            .await?;
        output::info(format!("Successfully stopped container {name}"));
    }
    engine.remove_container(name, args.v, args.force).await?;
    output::info(format!("Successfully removed container {name}"));
    if args.v {
        // Volumes carried over by a recreate are mounted by name, so the engine keeps them.
        for v in &own {
            match engine.remove_volume(v).await {
                Ok(()) => output::debug(format!("Removed volume {v}")),
                Err(e) if e.is_not_found() => {}
                Err(e) => output::warn("lifecycle", format!("could not remove volume {v}: {e}")),
            }
        }
        remove_unit_volumes(run, &info).await?;
    }
    remove_network_if_unused(run).await;
    Ok(())
}

/// Removes the named volumes of the unit that this container used, once nothing uses them.
async fn remove_unit_volumes(run: &UnitRun<'_>, info: &ContainerInfo) -> OrderResult {
    for m in &info.mounts {
        let Some(vol) = m.name.as_deref() else {
            continue;
        };
        if m.kind != "volume" || m.is_anonymous_volume() {
            continue;
        }
        remove_unit_volume(run, vol).await?;
    }
    Ok(())
}

/// Removes the named volume `vol` if it carries the unit's label (else it is refused and
/// named at the end of the run) and nothing uses it.
pub async fn remove_unit_volume(run: &UnitRun<'_>, vol: &str) -> OrderResult {
    let engine = run.engine();
    let Some(labels) = engine.volume_labels(vol).await? else {
        return Ok(());
    };
    let owner = Owner::of(&labels, &run.naming.unit_label);
    if !owner.is_unit() {
        run.rt.refusals.refuse("volume", vol, "removing", &owner);
        return Ok(());
    }
    match engine.remove_volume(vol).await {
        Ok(()) => output::info(format!("Successfully removed volume {vol}")),
        Err(e) if e.is_not_found() => {}
        Err(EngineError::Conflict { .. }) => {
            output::debug(format!(
                "Not removing volume {vol}: another container uses it"
            ));
        }
        Err(e) => output::warn("lifecycle", format!("could not remove volume {vol}: {e}")),
    }
    Ok(())
}

/// Removes the unit network once no container of the unit is left (running or not: a created
/// container joins the network when it starts). The engine refuses while a container that is
/// not the unit's is attached, and Docker 20.10 sometimes refuses with "has active endpoints"
/// although nothing is attached: either is reported as a warning and the teardown carries on.
pub async fn remove_network_if_unused(run: &UnitRun<'_>) {
    let engine = run.engine();
    let net = &run.naming.network;
    // While containers of the unit are attached, one inspect answers; the listing is only
    // needed for the last one (created containers are not attached until they start).
    let attached = match engine.network_containers(net).await {
        Ok(Some(attached)) => attached,
        Ok(None) => return,
        Err(e) => {
            output::warn("lifecycle", format!("could not inspect network {net}: {e}"));
            return;
        }
    };
    if attached.iter().any(|c| run.unit.containers.contains_key(c)) {
        return;
    }
    match engine
        .containers_with_labels(&[(LABEL_UNIT, run.naming.unit_label.as_str())])
        .await
    {
        Ok(left) if left.is_empty() => match network_owner(run).await {
            Some(owner) if !owner.is_unit() => {
                run.rt.refusals.refuse("network", net, "removing", &owner);
            }
            _ => remove_network(run, &attached).await,
        },
        Ok(_) => {}
        Err(e) => output::warn(
            "lifecycle",
            format!("could not list the containers of {net}: {e}"),
        ),
    }
}

/// Whose the unit network is; `None` when that cannot be told (the removal then says why).
async fn network_owner(run: &UnitRun<'_>) -> Option<Owner> {
    let labels = run
        .engine()
        .network_labels(&run.naming.network)
        .await
        .ok()??;
    Some(Owner::of(&labels, &run.naming.unit_label))
}

async fn remove_network(run: &UnitRun<'_>, attached: &[String]) {
    let net = &run.naming.network;
    match run.engine().remove_network(net).await {
        Ok(()) => {
            run.forget_network().await;
            output::debug(format!("Removed network {net}"));
        }
        Err(e) if e.is_not_found() => run.forget_network().await,
        Err(e) => {
            let users = if attached.is_empty() {
                String::new()
            } else {
                format!(", which {} still uses", attached.join(", "))
            };
            output::warn(
                "lifecycle",
                format!("could not remove network {net}{users} (carrying on): {e}"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with_env(env: &[(&str, &str)]) -> ContainerSpec {
        let source = std::sync::Arc::new(crate::config::source::Source::new(
            "t.yaml",
            "c: {image: x}\n",
        ));
        let v = source.documents().unwrap()[0].get("c").unwrap().clone();
        let mut s = crate::unit::container::container_from_value(
            "web",
            &v,
            &crate::config::source::Origin::new(source, 0, vec![]),
        )
        .unwrap();
        s.env = env
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        s
    }

    #[test]
    fn the_previous_run_ended_when_the_engine_says() {
        let info = |finished: &str| ContainerInfo {
            finished_at: finished.into(),
            ..ContainerInfo::default()
        };
        assert_eq!(previous_run_end(&info("0001-01-01T00:00:00Z")), None);
        assert_eq!(previous_run_end(&info("")), None);
        assert_eq!(
            previous_run_end(&info("2026-01-02T03:04:05.25Z")).map(|t| t.to_rfc3339()),
            Some("2026-01-02T03:04:05.250+00:00".into())
        );
    }

    #[test]
    fn mandatory_env_labels_are_enforced() {
        let labels = HashMap::from([
            ("api.ENV.API_KEY.mandatory".to_string(), "true".to_string()),
            (
                "api.ENV.API_KEY.description".to_string(),
                "the key".to_string(),
            ),
            (
                "api.ENV.OPTIONAL.mandatory".to_string(),
                "false".to_string(),
            ),
        ]);
        let err = check_mandatory_env(&spec_with_env(&[]), &labels)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`API_KEY` (the key)"), "{err}");
        assert!(check_mandatory_env(&spec_with_env(&[("API_KEY", "x")]), &labels).is_ok());
    }

    #[test]
    fn a_mandatory_label_without_a_name_is_ignored() {
        for key in [
            "api.ENV.mandatory",
            "api.ENV..mandatory",
            "api.ENV.X.mandatory.x",
        ] {
            let labels = HashMap::from([(key.to_string(), "true".to_string())]);
            assert!(
                check_mandatory_env(&spec_with_env(&[]), &labels).is_ok(),
                "{key}"
            );
        }
    }
}
