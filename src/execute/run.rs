//! `execute` (types `file_system`, `temporary`, `in_running`, `host`) and `unit` orders, and
//! the one place that runs a container to completion and always removes it afterwards.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::engine::OutputChunk;
use crate::execute::substitute::substitute_args;
use crate::execute::{
    OrderError, OrderResult, Tail, UnitRun, lifecycle, resolve_build_path, resolve_host_path,
};
use crate::output;
use crate::text::replace_unless;
use crate::unit::container::{ContainerSpec, MountSpec};
use crate::unit::order::{ExecType, ExecuteArgs, HOST, RunCommand, UnitArgs};

/// How many output lines an error message shows.
const TAIL_LINES: usize = 10;

/// The command line of an `execute` order, with runtime substitutions done.
async fn command(run: &UnitRun<'_>, name: &str, cmd: &RunCommand) -> OrderResult<Vec<String>> {
    Ok(match cmd {
        RunCommand::Argv(v) => substitute_args(run, v, name).await?,
        RunCommand::Shell(v) => {
            let mut out = vec!["sh".to_string(), "-c".to_string()];
            out.extend(substitute_args(run, v, name).await?);
            out
        }
    })
}

/// `execute`.
pub async fn execute(run: &UnitRun<'_>, name: &str, args: &ExecuteArgs) -> OrderResult {
    let exec_type = args.exec_type.unwrap_or(if name == HOST {
        ExecType::Host
    } else {
        ExecType::FileSystem
    });
    let cmd = command(run, name, &args.run).await?;
    let shown = cmd.join(" ");
    match exec_type {
        ExecType::Host => host(run, name, &cmd, args).await,
        ExecType::FileSystem => {
            output::info(format!(
                "Executing command {shown} on file system of container {name}."
            ));
            let spec = run.spec(name)?;
            if run.engine().container(name).await?.is_none() {
                return Err(OrderError::failed(format!(
                    "container `{name}` does not exist; create it before running commands on its file system"
                )));
            }
            let image = helper_image(run, spec)?;
            let helper = helper_spec(run, spec, &image, cmd, args, "exec");
            crate::execute::image::ensure_image(run, &helper, &image).await?;
            let (code, tail) = run_container(run, helper, false).await?;
            finish(
                name,
                &shown,
                code,
                &tail,
                "in a helper container with its volumes",
            )
        }
        ExecType::Temporary => temporary(run, name, cmd, args).await,
        ExecType::InRunning => {
            let running = run
                .engine()
                .container(name)
                .await?
                .is_some_and(|c| c.running);
            if !running {
                output::debug(format!(
                    "Container {name} is not running: executing in a temporary container instead"
                ));
                return temporary(run, name, cmd, args).await;
            }
            output::info(format!(
                "Executing command {shown} in running container {name}."
            ));
            let mut tail = Tail::new(TAIL_LINES);
            let env: Vec<String> = args.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let exec = run.engine().exec(
                name,
                cmd,
                env,
                args.user.clone(),
                args.working_dir.clone(),
                |chunk| {
                    for line in tail.push(&chunk.data) {
                        output::output(1, line);
                    }
                },
            );
            let code = run.rt.interrupt.race(exec).await??;
            if let Some(l) = tail.finish() {
                output::output(1, l);
            }
            finish(name, &shown, code, &tail, "in the running container")
        }
    }
}

fn finish(name: &str, shown: &str, code: i64, tail: &Tail, how: &str) -> OrderResult {
    if code == 0 {
        output::info(format!(
            "Successfully executed command {shown} in container {name}."
        ));
        Ok(())
    } else {
        Err(OrderError::failed(format!(
            "Execution of `{shown}` {how} of `{name}` failed with exit code {code}{}",
            tail.render()
        )))
    }
}

/// `HELPER_IMAGE` from the environment, else the container's own image.
pub fn helper_image(run: &UnitRun<'_>, spec: &ContainerSpec) -> OrderResult<String> {
    run.unit
        .environment
        .get_str("HELPER_IMAGE")
        .filter(|s| !s.is_empty())
        .or_else(|| spec.image.clone())
        .ok_or_else(|| {
            OrderError::failed(format!(
                "`{}` has no image to run a helper from; set `HELPER_IMAGE` in an environment file",
                spec.name
            ))
        })
}

/// A throw-away container with the volumes of `spec`'s container (`volumes_from`).
pub fn helper_spec(
    run: &UnitRun<'_>,
    spec: &ContainerSpec,
    image: &str,
    cmd: Vec<String>,
    args: &ExecuteArgs,
    what: &str,
) -> ContainerSpec {
    let mut helper = bare_spec(&temp_name(&spec.name, what), image);
    helper.command = Some(cmd);
    helper.entrypoint = Some(Vec::new());
    helper.host.volumes_from = vec![spec.name.clone()];
    helper.host.network_mode = Some("none".into());
    helper.env.clone_from(&args.env);
    helper.user.clone_from(&args.user);
    helper.working_dir.clone_from(&args.working_dir);
    helper.mounts = args
        .binds
        .iter()
        .map(|(h, c, ro)| MountSpec::Bind {
            host: resolve_host_path(run.rt, Some(spec), h)
                .display()
                .to_string(),
            container: c.clone(),
            read_only: *ro,
        })
        .collect();
    helper
}

/// A spec with only a name and an image.
pub fn bare_spec(name: &str, image: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_string(),
        build: None,
        image: Some(image.to_string()),
        command: None,
        entrypoint: None,
        env: Vec::new(),
        ports: Vec::new(),
        mounts: Vec::new(),
        labels: indexmap::IndexMap::new(),
        working_dir: None,
        user: None,
        hostname: None,
        domainname: None,
        tty: false,
        stdin_open: false,
        stop_signal: None,
        mac_address: None,
        healthcheck: None,
        host: crate::unit::container::HostSpec::default(),
        tests: crate::unit::container::TestSpec::default(),
        pull: crate::unit::container::PullPolicy::default(),
        stop_timeout: crate::unit::container::DEFAULT_STOP_TIMEOUT,
        backup: None,
        restore: None,
        deploy: crate::unit::container::deploy::DeploySpec::default(),
        secrets: Vec::new(),
    }
}

/// `<container>_<what>_<random>`.
pub fn temp_name(container: &str, what: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{container}_{what}_{:08x}", nanos ^ std::process::id())
}

/// A temporary container made from the container's spec, with `cmd` as its command.
async fn temporary(
    run: &UnitRun<'_>,
    name: &str,
    cmd: Vec<String>,
    args: &ExecuteArgs,
) -> OrderResult {
    let spec = run.spec(name)?;
    let shown = cmd.join(" ");
    output::info(format!(
        "Executing command {shown} in a temporary container of {name}."
    ));
    let mut tmp = spec.clone();
    tmp.name = temp_name(name, "tmp");
    tmp.command = Some(cmd);
    // Host ports belong to the real container.
    tmp.ports.clear();
    tmp.healthcheck = None;
    tmp.host.restart_policy = None;
    tmp.env.extend(args.env.iter().cloned());
    if args.user.is_some() {
        tmp.user.clone_from(&args.user);
    }
    if args.working_dir.is_some() {
        tmp.working_dir.clone_from(&args.working_dir);
    }
    for (h, c, ro) in &args.binds {
        tmp.mounts.retain(|m| m.container_path() != c);
        tmp.mounts.push(MountSpec::Bind {
            host: resolve_host_path(run.rt, Some(spec), h)
                .display()
                .to_string(),
            container: c.clone(),
            read_only: *ro,
        });
    }
    let image = spec.image.clone().unwrap_or_default();
    crate::execute::image::ensure_image(run, spec, &image).await?;
    let (code, tail) = run_container(run, tmp, true).await?;
    finish(name, &shown, code, &tail, "in a temporary container")
}

/// Creates `spec`, runs it to its end and removes it (also on failure and interrupt).
/// Returns its exit code and the last lines of its output. `remove_volumes` also removes the
/// container's anonymous volumes.
pub async fn run_container(
    run: &UnitRun<'_>,
    spec: ContainerSpec,
    remove_volumes: bool,
) -> OrderResult<(i64, Tail)> {
    run_container_with(run, spec, remove_volumes, |_| {}).await
}

/// [`run_container`], also handing every output chunk to `on_chunk`.
pub async fn run_container_with(
    run: &UnitRun<'_>,
    spec: ContainerSpec,
    remove_volumes: bool,
    on_chunk: impl FnMut(&OutputChunk) + Send,
) -> OrderResult<(i64, Tail)> {
    let name = spec.name.clone();
    let result = Box::pin(run_container_kept(run, spec, on_chunk)).await;
    remove_temporary(run, &name, remove_volumes).await;
    result
}

/// Removes a temporary container (a missing one is fine; a failure is a warning).
pub async fn remove_temporary(run: &UnitRun<'_>, name: &str, remove_volumes: bool) {
    if let Err(e) = run
        .engine()
        .remove_container(name, remove_volumes, true)
        .await
    {
        if !e.is_not_found() {
            output::warn(
                "execute",
                format!("could not remove the temporary container {name}: {e}"),
            );
        }
    }
}

/// Creates `spec` and runs it to its end, handing every output chunk to `on_chunk`, and leaves
/// the container behind (to copy files out of it): the caller removes it with
/// [`remove_temporary`], also when this fails or is dropped.
pub async fn run_container_kept(
    run: &UnitRun<'_>,
    mut spec: ContainerSpec,
    mut on_chunk: impl FnMut(&OutputChunk) + Send,
) -> OrderResult<(i64, Tail)> {
    let engine = run.engine();
    let name = spec.name.clone();
    spec.labels.insert("dstart.temporary".into(), "true".into());
    let req = lifecycle::request(run, &spec, std::collections::HashMap::new())?;
    if spec.on_unit_network() {
        run.ensure_network().await?;
    }
    let created = engine.create_container(&name, req).await?;
    lifecycle::log_created(&name, &created);
    let mut tail = Tail::new(TAIL_LINES);
    let body = async {
        let mut stream = engine.attach(&name).await?;
        engine.start_container(&name).await?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            on_chunk(&chunk);
            for line in tail.push(&chunk.data) {
                output::output(1, line);
            }
        }
        if let Some(l) = tail.finish() {
            output::output(1, l);
        }
        Ok::<i64, OrderError>(engine.wait_container(&name).await?)
    };
    let Ok(result) = run.rt.interrupt.race(body).await else {
        let _ = engine.kill_container(&name).await;
        return Err(OrderError::Interrupted);
    };
    result.map(|code| (code, tail))
}

/// `DSTART_SERVICES_<CONTAINER>_PORTS_<PORT>` for every published port of the unit.
pub async fn services_env(run: &UnitRun<'_>) -> OrderResult<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for name in run.unit.containers.keys() {
        // In swarm mode the service's ports, published on every node.
        let ports: Vec<(String, u16)> = if run.swarm() {
            match run.engine().service(name).await? {
                Some(service) => service.ports,
                None => continue,
            }
        } else {
            match run.engine().container(name).await? {
                Some(info) => info.ports.into_iter().map(|(p, _, h)| (p, h)).collect(),
                None => continue,
            }
        };
        let key = replace_unless(run.display_name(name), |c| c.is_ascii_alphanumeric(), '_')
            .to_ascii_uppercase();
        for (port, host_port) in &ports {
            let port_key = match port.split_once('/') {
                Some((p, "tcp")) => p.to_string(),
                Some((p, proto)) => format!("{p}_{}", proto.to_ascii_uppercase()),
                None => port.clone(),
            };
            env.entry(format!("DSTART_SERVICES_{key}_PORTS_{port_key}"))
                .or_insert_with(|| host_port.to_string());
        }
    }
    Ok(env)
}

/// The working directory of a host command: `working_dir` (relative to the configuration
/// directory), else the container's build directory, else the current directory.
fn host_cwd(run: &UnitRun<'_>, name: &str, args: &ExecuteArgs) -> PathBuf {
    if let Some(dir) = &args.working_dir {
        return resolve_host_path(run.rt, None, dir);
    }
    run.unit
        .containers
        .get(name)
        .and_then(|c| c.spec.build.as_ref())
        .map_or_else(
            || run.rt.cwd.clone(),
            |b| resolve_build_path(run.rt, &b.path),
        )
}

/// Runs a command on the host.
async fn host(run: &UnitRun<'_>, name: &str, cmd: &[String], args: &ExecuteArgs) -> OrderResult {
    let shown = cmd.join(" ");
    let cwd = host_cwd(run, name, args);
    output::info(format!("Executing command {shown} on the host"));
    let mut command = tokio::process::Command::new(&cmd[0]);
    command
        .args(&cmd[1..])
        .current_dir(&cwd)
        .envs(services_env(run).await?)
        .envs(args.env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| {
        OrderError::failed(format!("cannot run `{shown}` (cwd={}): {e}", cwd.display()))
    })?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let tail = std::sync::Mutex::new(Tail::new(TAIL_LINES));
    let pump = |reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        let tail = &tail;
        async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                output::output(1, &line);
                if let Ok(mut t) = tail.lock() {
                    t.push(format!("{line}\n").as_bytes());
                }
            }
        }
    };
    let waited = async {
        let ((), ()) = tokio::join!(pump(Box::new(stdout)), pump(Box::new(stderr)));
        child.wait().await
    };
    let status = run
        .rt
        .interrupt
        .race(waited)
        .await?
        .map_err(OrderError::io(format!("waiting for `{shown}`")))?;
    let tail = tail
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match status.code() {
        Some(0) => {
            output::info(format!("Successfully executed command {shown} on the host"));
            Ok(())
        }
        code => Err(OrderError::failed(format!(
            "Execution of {shown} failed with error code {} (cwd={}){}",
            code.map_or_else(
                || "none (killed by a signal)".to_string(),
                |c| c.to_string()
            ),
            cwd.display(),
            tail.render()
        ))),
    }
}

/// `unit`: runs another unit command inside this run, as it was loaded with the run
/// (`generate::resolve_nested`: cycles and units that do not load were refused then).
pub async fn unit(run: &UnitRun<'_>, args: &UnitArgs) -> OrderResult {
    let Some(unit) = run.unit.nested_unit(args) else {
        return Err(OrderError::failed(format!(
            "the unit command `{}` was not loaded with the run",
            args.unit
        )));
    };
    let key = unit.command.to_string();
    output::info(format!("Running unit command {key}"));
    let mut stack = run.stack.clone();
    stack.push(key.clone());
    let child = UnitRun::new(run.rt, unit, stack);
    Box::pin(child.run_unit()).await?;
    output::info(format!("Finished unit command {key}"));
    Ok(())
}
