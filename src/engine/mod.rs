//! The Docker engine: connection, API version negotiation and typed calls. This is the only
//! module that knows bollard; everything else sees the engine-neutral types defined here.
//!
//! Address precedence: `-H` > `DOCKER_HOST` in the process environment > `DOCKER_HOST` from
//! the environment files > the local socket. `unix://`, `tcp://` (TLS with `DOCKER_TLS_VERIFY`
//! and `DOCKER_CERT_PATH`) and a bare socket path work.

pub mod archive;
pub mod convert;
pub mod watchdog;

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;

use bollard::Docker;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters as qp;
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use thiserror::Error;

/// The oldest engine API dstart works with.
pub const MIN_API: (usize, usize) = (1, 41);

/// Seconds bollard waits for a response. Long calls (wait, attach, archives) must not time out
/// on their own; dstart applies its own timeouts where an order asks for one.
const CLIENT_TIMEOUT_SECS: u64 = 60 * 60 * 24 * 7;

/// Errors talking to the engine.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at `{address}`: {message}")]
    Unreachable { address: String, message: String },
    #[error("the Docker engine at `{address}` speaks API {version}; dstart needs 1.41 or newer")]
    TooOld { address: String, version: String },
    #[error("{context}: no such {kind} `{name}`")]
    NotFound {
        context: String,
        kind: &'static str,
        name: String,
    },
    #[error("{context}: {message}")]
    Conflict { context: String, message: String },
    #[error("{context}: {message}")]
    Api {
        context: String,
        status: u16,
        message: String,
    },
    #[error("{context}: {message}")]
    Transport { context: String, message: String },
}

impl EngineError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, EngineError::NotFound { .. })
    }

    /// The engine's own message (for matching known quirks).
    pub fn message(&self) -> String {
        match self {
            EngineError::Unreachable { message, .. }
            | EngineError::Conflict { message, .. }
            | EngineError::Api { message, .. }
            | EngineError::Transport { message, .. } => message.clone(),
            EngineError::TooOld { version, .. } => version.clone(),
            EngineError::NotFound { name, .. } => format!("no such object {name}"),
        }
    }
}

/// Turns a bollard error into an [`EngineError`], classifying 404 and 409.
fn classify(
    context: &str,
    kind: &'static str,
    name: &str,
    err: bollard::errors::Error,
) -> EngineError {
    match err {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => from_status(context, kind, name, status_code, &message),
        other => EngineError::Transport {
            context: context.to_string(),
            message: other.to_string(),
        },
    }
}

/// The [`EngineError`] of an answer with HTTP status `status` and the engine's `message`.
fn from_status(
    context: &str,
    kind: &'static str,
    name: &str,
    status: u16,
    message: &str,
) -> EngineError {
    match status {
        404 => {
            // "No such image" for a container create means the image, not the container.
            if message.contains("No such image") || message.contains("no such image") {
                EngineError::NotFound {
                    context: context.to_string(),
                    kind: "image",
                    name: message
                        .rsplit(": ")
                        .next()
                        .unwrap_or(name)
                        .trim()
                        .to_string(),
                }
            } else {
                EngineError::NotFound {
                    context: context.to_string(),
                    kind,
                    name: name.to_string(),
                }
            }
        }
        409 => EngineError::Conflict {
            context: context.to_string(),
            message: message.trim().to_string(),
        },
        _ => EngineError::Api {
            context: context.to_string(),
            status,
            message: message.trim().to_string(),
        },
    }
}

/// Where the engine is, as the user gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp { host: String, tls: Option<PathBuf> },
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Tcp { host, .. } => write!(f, "tcp://{host}"),
        }
    }
}

/// The default local socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Parses a Docker host string. `tls_cert_dir` is used for tcp when TLS verification is on.
pub fn parse_address(text: &str, tls_cert_dir: Option<PathBuf>) -> Result<Address, String> {
    let text = text.trim();
    if let Some(path) = text.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(format!("`{text}` names no socket"));
        }
        return Ok(Address::Unix(PathBuf::from(path)));
    }
    if text.starts_with('/') {
        return Ok(Address::Unix(PathBuf::from(text)));
    }
    let host = text
        .strip_prefix("tcp://")
        .or_else(|| text.strip_prefix("http://"))
        .or_else(|| text.strip_prefix("https://"))
        .unwrap_or(text)
        .trim_end_matches('/');
    if host.is_empty() || host.contains("://") {
        return Err(format!(
            "`{text}` is not a Docker host (use unix:///path/to/socket or tcp://HOST:PORT)"
        ));
    }
    let host = if host.contains(':') {
        host.to_string()
    } else {
        let port = if tls_cert_dir.is_some() { 2376 } else { 2375 };
        format!("{host}:{port}")
    };
    Ok(Address::Tcp {
        host,
        tls: tls_cert_dir,
    })
}

/// Chooses the engine address: `-H`, then the process `DOCKER_HOST`, then the environment
/// files' `DOCKER_HOST`, then the local socket.
pub fn choose_address(flag: Option<&str>, env_file_host: Option<&str>) -> Result<Address, String> {
    let tls = match std::env::var("DOCKER_TLS_VERIFY") {
        Ok(v) if !v.is_empty() && v != "0" => Some(
            std::env::var_os("DOCKER_CERT_PATH")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
                .unwrap_or_else(|| PathBuf::from(".docker")),
        ),
        _ => None,
    };
    let process = std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty());
    let chosen = flag
        .map(str::to_string)
        .or(process)
        .or_else(|| env_file_host.map(str::to_string))
        .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"));
    parse_address(&chosen, tls)
}

/// A connected engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    address: String,
    api_version: String,
    /// The unix socket, when the engine is reached through one.
    socket: Option<PathBuf>,
}

/// A mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    /// `volume`, `bind`, `tmpfs`.
    pub kind: String,
    /// The volume name (volumes only).
    pub name: Option<String>,
    pub source: String,
    pub destination: String,
    pub read_write: bool,
}

impl MountInfo {
    /// Whether the volume is anonymous (a 64-hex-digit name the engine chose).
    pub fn is_anonymous_volume(&self) -> bool {
        self.kind == "volume"
            && self
                .name
                .as_deref()
                .is_some_and(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
    }
}

/// What dstart needs to know about an existing container.
#[derive(Debug, Clone, Default)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub running: bool,
    /// `created`, `running`, `exited`, ...
    pub status: String,
    pub exit_code: i64,
    /// The image ID the container was created from.
    pub image_id: String,
    /// The image name the container was created with.
    pub image: String,
    pub labels: HashMap<String, String>,
    pub mounts: Vec<MountInfo>,
    /// `starting`, `healthy`, `unhealthy` when the image has a health check.
    pub health: Option<String>,
    /// Published ports: (container port key like `80/tcp`, host IP, host port).
    pub ports: Vec<(String, String, u16)>,
    /// Networks and the container's address on each.
    pub networks: Vec<(String, String)>,
    /// Volume paths declared by the container config (image `VOLUME` and creation volumes).
    pub config_volumes: Vec<String>,
    /// `HostConfig.VolumesFrom`.
    pub volumes_from: Vec<String>,
    pub started_at: String,
    /// When the last run ended (`0001-01-01T00:00:00Z` before the first end).
    pub finished_at: String,
    /// The engine's inspect document (for `[[.Path]]` substitutions).
    pub raw: serde_json::Value,
}

impl ContainerInfo {
    fn from_inspect(inspect: &ContainerInspectResponse) -> Self {
        let inspect = inspect.clone();
        let raw = serde_json::to_value(&inspect).unwrap_or(serde_json::Value::Null);
        let state = inspect.state.clone().unwrap_or_default();
        let config = inspect.config.clone().unwrap_or_default();
        let mounts = inspect
            .mounts
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|m| MountInfo {
                kind: m.typ.clone().unwrap_or_default(),
                name: m.name,
                source: m.source.unwrap_or_default(),
                destination: m.destination.unwrap_or_default(),
                read_write: m.rw.unwrap_or(true),
            })
            .collect();
        let settings = inspect.network_settings.clone().unwrap_or_default();
        let mut ports = Vec::new();
        for (key, bindings) in settings.ports.clone().unwrap_or_default() {
            for b in bindings.unwrap_or_default() {
                if let Some(p) = b.host_port.as_deref().and_then(|p| p.parse::<u16>().ok()) {
                    ports.push((key.clone(), b.host_ip.clone().unwrap_or_default(), p));
                }
            }
        }
        ports.sort();
        let mut networks: Vec<(String, String)> = settings
            .networks
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(n, e)| (n, e.ip_address.unwrap_or_default()))
            .collect();
        networks.sort();
        let mut config_volumes: Vec<String> = config.volumes.clone().unwrap_or_default();
        config_volumes.sort();
        ContainerInfo {
            id: inspect.id.clone().unwrap_or_default(),
            name: inspect
                .name
                .clone()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            running: state.running.unwrap_or(false),
            status: state.status.map(|s| s.to_string()).unwrap_or_default(),
            exit_code: state.exit_code.unwrap_or(0),
            image_id: inspect.image.clone().unwrap_or_default(),
            image: config.image.clone().unwrap_or_default(),
            labels: config.labels.clone().unwrap_or_default(),
            mounts,
            health: state
                .health
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none"),
            ports,
            networks,
            config_volumes,
            volumes_from: inspect
                .host_config
                .clone()
                .and_then(|h| h.volumes_from)
                .unwrap_or_default(),
            started_at: state.started_at.unwrap_or_default(),
            finished_at: state.finished_at.unwrap_or_default(),
            raw,
        }
    }
}

/// What dstart needs to know about an image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub env: Vec<String>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub raw: serde_json::Value,
}

/// A chunk of container output.
#[derive(Debug, Clone)]
pub struct OutputChunk {
    pub stderr: bool,
    pub data: Bytes,
}

/// One line of a pull's or push's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The layer the line is about, when it is about one.
    pub id: Option<String>,
    pub status: String,
    /// Bytes done and in all, while a layer moves.
    pub current: Option<i64>,
    pub total: Option<i64>,
}

impl Progress {
    fn from_stream(
        id: Option<String>,
        status: Option<String>,
        detail: Option<bollard::models::ProgressDetail>,
    ) -> Option<Progress> {
        let detail = detail.unwrap_or_default();
        status.map(|status| Progress {
            id,
            status,
            current: detail.current,
            total: detail.total,
        })
    }

    /// What a repeated line repeats: the layer and its status (`(<id>) <status>`).
    pub fn key(&self) -> String {
        match &self.id {
            Some(id) => format!("({id}) {}", self.status),
            None => self.status.clone(),
        }
    }

    /// The line shown: `(<id>) <status>: <current>/<total>`.
    pub fn line(&self) -> String {
        match (self.current, self.total) {
            (Some(c), Some(t)) if t > 0 => format!("{}: {c}/{t}", self.key()),
            (Some(c), _) => format!("{}: {c}", self.key()),
            _ => self.key(),
        }
    }
}

/// A created container: its ID and what the engine warned about.
#[derive(Debug, Clone, Default)]
pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

/// A build's progress.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    /// A line of the build output.
    Line(String),
}

/// Build parameters.
#[derive(Debug, Clone, Default)]
pub struct BuildParams {
    pub tag: Option<String>,
    pub dockerfile: String,
    pub rm: bool,
    pub nocache: bool,
    pub pull: bool,
    pub forcerm: bool,
    pub buildargs: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    pub target: Option<String>,
    pub network_mode: Option<String>,
}

/// A summary of a container in a listing.
#[derive(Debug, Clone)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
}

/// A container's output, chunk by chunk.
pub type OutputStream = Pin<Box<dyn Stream<Item = Result<OutputChunk, EngineError>> + Send>>;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, EngineError>> + Send>>;

fn label_filter(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut f = HashMap::new();
    f.insert(
        "label".to_string(),
        pairs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    );
    f
}

impl Engine {
    /// Connects to `address` and negotiates the API version.
    pub async fn connect(address: &Address) -> Result<Engine, EngineError> {
        let shown = address.to_string();
        let unreachable = |message: String| EngineError::Unreachable {
            address: shown.clone(),
            message,
        };
        let docker = match address {
            Address::Unix(path) => {
                if !path.exists() {
                    return Err(unreachable("the socket does not exist".into()));
                }
                Docker::connect_with_unix(
                    &path.display().to_string(),
                    CLIENT_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
            }
            Address::Tcp { host, tls: None } => {
                Docker::connect_with_http(host, CLIENT_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            }
            Address::Tcp {
                host,
                tls: Some(dir),
            } => {
                for f in ["key.pem", "cert.pem", "ca.pem"] {
                    if !dir.join(f).is_file() {
                        return Err(unreachable(format!(
                            "TLS is on (DOCKER_TLS_VERIFY) but `{}` is missing",
                            dir.join(f).display()
                        )));
                    }
                }
                Docker::connect_with_ssl(
                    host,
                    &dir.join("key.pem"),
                    &dir.join("cert.pem"),
                    &dir.join("ca.pem"),
                    CLIENT_TIMEOUT_SECS,
                    bollard::API_DEFAULT_VERSION,
                )
            }
        }
        .map_err(|e| unreachable(e.to_string()))?;
        let docker = tokio::time::timeout(
            std::time::Duration::from_secs(15),
            docker.negotiate_version(),
        )
        .await
        .map_err(|_| unreachable("no answer within 15 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let v = docker.client_version();
        if (v.major_version, v.minor_version) < MIN_API {
            return Err(EngineError::TooOld {
                address: shown,
                version: format!("{}.{}", v.major_version, v.minor_version),
            });
        }
        Ok(Engine {
            api_version: format!("{}.{}", v.major_version, v.minor_version),
            docker,
            address: shown,
            socket: match address {
                Address::Unix(path) => Some(path.clone()),
                Address::Tcp { .. } => None,
            },
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    // -- containers ---------------------------------------------------------------------------

    /// Inspects a container; `None` if it does not exist.
    pub async fn container(&self, name: &str) -> Result<Option<ContainerInfo>, EngineError> {
        let inspect = self
            .docker
            .inspect_container(name, None)
            .await
            .map_err(|e| classify("inspecting a container", "container", name, e));
        Ok(optional(inspect)?.map(|i| ContainerInfo::from_inspect(&i)))
    }

    /// Containers carrying all the given labels (running or not).
    pub async fn containers_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let opts = qp::ListContainersOptions {
            all: true,
            filters: Some(label_filter(labels)),
            ..Default::default()
        };
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| classify("listing containers", "container", "", e))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerSummary {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
                running: c.state.map(|s| s.to_string()).as_deref() == Some("running"),
            })
            .collect())
    }

    /// Creates a container. Errors with `NotFound { kind: "image" }` when the image is missing.
    pub async fn create_container(
        &self,
        name: &str,
        req: convert::CreateRequest,
    ) -> Result<Created, EngineError> {
        let opts = qp::CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        self.docker
            .create_container(Some(opts), req.body)
            .await
            .map(|r| Created {
                id: r.id,
                warnings: r.warnings,
            })
            .map_err(|e| {
                classify(
                    &format!("creating container `{name}`"),
                    "container",
                    name,
                    e,
                )
            })
    }

    pub async fn start_container(&self, name: &str) -> Result<(), EngineError> {
        match self
            .docker
            .start_container(name, None::<qp::StartContainerOptions>)
            .await
        {
            // 304: already running.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(classify(
                &format!("starting container `{name}`"),
                "container",
                name,
                e,
            )),
        }
    }

    pub async fn stop_container(&self, name: &str, timeout: u32) -> Result<(), EngineError> {
        let opts = qp::StopContainerOptions {
            t: Some(i32::try_from(timeout).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        match self.docker.stop_container(name, Some(opts)).await {
            // 304: already stopped.
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(classify(
                &format!("stopping container `{name}`"),
                "container",
                name,
                e,
            )),
        }
    }

    pub async fn kill_container(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .kill_container(name, None::<qp::KillContainerOptions>)
            .await
            .map_err(|e| classify(&format!("killing container `{name}`"), "container", name, e))
    }

    /// Removes a container; `volumes` also removes its anonymous volumes.
    pub async fn remove_container(
        &self,
        name: &str,
        volumes: bool,
        force: bool,
    ) -> Result<(), EngineError> {
        let opts = qp::RemoveContainerOptions {
            v: volumes,
            force,
            link: false,
        };
        self.docker
            .remove_container(name, Some(opts))
            .await
            .map_err(|e| {
                classify(
                    &format!("removing container `{name}`"),
                    "container",
                    name,
                    e,
                )
            })
    }

    pub async fn rename_container(&self, name: &str, new_name: &str) -> Result<(), EngineError> {
        let opts = qp::RenameContainerOptions {
            name: new_name.to_string(),
        };
        self.docker.rename_container(name, opts).await.map_err(|e| {
            classify(
                &format!("renaming container `{name}`"),
                "container",
                name,
                e,
            )
        })
    }

    /// Waits until the container stops and returns its exit code.
    pub async fn wait_container(&self, name: &str) -> Result<i64, EngineError> {
        let opts = qp::WaitContainerOptions {
            condition: "not-running".to_string(),
        };
        let mut stream = self.docker.wait_container(name, Some(opts));
        let mut code = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(r) => code = Some(r.status_code),
                // bollard reports a non-zero exit as an error; it is an answer here.
                Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => {
                    code = Some(c);
                }
                Err(e) => {
                    return Err(classify(
                        &format!("waiting for container `{name}`"),
                        "container",
                        name,
                        e,
                    ));
                }
            }
        }
        match code {
            Some(c) => Ok(c),
            None => Ok(self.container(name).await?.map_or(0, |c| c.exit_code)),
        }
    }

    /// The container's output: `since` a UNIX time (0 = from the start), following new output
    /// when `follow`, only the last `tail` lines when given.
    pub fn logs(&self, name: &str, follow: bool, since: i64, tail: Option<usize>) -> OutputStream {
        self.logs_with(name, follow, since, tail, false)
    }

    /// The container's output logged after the instant `after` (all of it when `None`),
    /// following new output when `follow`. The engine's `since` counts whole seconds, so the
    /// lines are read with their timestamps and those up to `after` are dropped here.
    pub fn logs_after(
        &self,
        name: &str,
        follow: bool,
        after: Option<chrono::DateTime<chrono::Utc>>,
    ) -> OutputStream {
        let Some(after) = after else {
            return self.logs(name, follow, 0, None);
        };
        let stream = self.logs_with(name, follow, after.timestamp().max(0), None, true);
        Box::pin(stream.filter_map(move |item| {
            let item = item.map(|chunk| OutputChunk {
                data: lines_after(&chunk.data, after),
                ..chunk
            });
            std::future::ready(match item {
                Ok(chunk) if chunk.data.is_empty() => None,
                other => Some(other),
            })
        }))
    }

    fn logs_with(
        &self,
        name: &str,
        follow: bool,
        since: i64,
        tail: Option<usize>,
        timestamps: bool,
    ) -> OutputStream {
        let opts = qp::LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            since: i32::try_from(since).unwrap_or(0),
            until: 0,
            timestamps,
            tail: tail.map_or_else(|| "all".to_string(), |t| t.to_string()),
        };
        let name = name.to_string();
        Box::pin(
            self.docker
                .logs(&name.clone(), Some(opts))
                .map(move |item| {
                    item.map(log_chunk).map_err(|e| {
                        classify(
                            &format!("reading the output of `{name}`"),
                            "container",
                            &name,
                            e,
                        )
                    })
                }),
        )
    }

    /// Attaches to the container's output stream (before starting it, to miss nothing).
    pub async fn attach(&self, name: &str) -> Result<OutputStream, EngineError> {
        let opts = qp::AttachContainerOptions {
            stdin: false,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            detach_keys: None,
        };
        let results = self
            .docker
            .attach_container(name, Some(opts))
            .await
            .map_err(|e| classify(&format!("attaching to `{name}`"), "container", name, e))?;
        let name = name.to_string();
        Ok(Box::pin(results.output.map(move |item| {
            item.map(log_chunk).map_err(|e| {
                classify(
                    &format!("reading the output of `{name}`"),
                    "container",
                    &name,
                    e,
                )
            })
        })))
    }

    /// Runs a command in a running container; returns its exit code and output.
    pub async fn exec(
        &self,
        name: &str,
        cmd: Vec<String>,
        env: Vec<String>,
        user: Option<String>,
        working_dir: Option<String>,
        mut on_output: impl FnMut(&OutputChunk) + Send,
    ) -> Result<i64, EngineError> {
        let context = format!("running a command in `{name}`");
        let created = self
            .docker
            .create_exec(
                name,
                bollard::models::ExecConfig {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd),
                    env: if env.is_empty() { None } else { Some(env) },
                    user,
                    working_dir,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| classify(&context, "container", name, e))?;
        let started = self
            .docker
            .start_exec(&created.id, None::<bollard::exec::StartExecOptions>)
            .await
            .map_err(|e| classify(&context, "container", name, e))?;
        if let bollard::exec::StartExecResults::Attached { mut output, .. } = started {
            while let Some(item) = output.next().await {
                let chunk = log_chunk(item.map_err(|e| classify(&context, "container", name, e))?);
                on_output(&chunk);
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| classify(&context, "container", name, e))?;
        Ok(inspect.exit_code.unwrap_or(-1))
    }

    // -- archives -----------------------------------------------------------------------------

    /// A tar stream of `path` inside the container (works on stopped containers).
    pub fn download(&self, name: &str, path: &str) -> ByteStream {
        let opts = qp::DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let ctx_name = name.to_string();
        let p = path.to_string();
        Box::pin(
            self.docker
                .download_from_container(name, Some(opts))
                .map_err(move |e| {
                    classify(&format!("reading `{p}` from `{ctx_name}`"), "path", &p, e)
                }),
        )
    }

    /// The tar of `path` in container `name` as a blocking reader (see [`archive`]), when the
    /// engine is on a unix socket; `None` otherwise (use [`Engine::download`]). Blocks: call it
    /// on the thread that reads the archive. Reads fail once `cancel` says so.
    pub fn download_blocking(
        &self,
        name: &str,
        path: &str,
        cancel: Box<dyn Fn() -> bool + Send>,
    ) -> Option<Result<archive::ArchiveReader, EngineError>> {
        let socket = self.socket.as_deref()?;
        Some(archive::ArchiveReader::open(
            socket,
            &self.api_version,
            name,
            path,
            cancel,
        ))
    }

    /// Unpacks the tar read from `body` into `path` of container `name` (see [`archive`]), when
    /// the engine is on a unix socket; `None` otherwise (use [`Engine::upload`]). Blocks: call
    /// it on the thread that reads the archive. Gives up once `cancel` says so.
    pub fn upload_blocking(
        &self,
        name: &str,
        path: &str,
        body: &mut dyn std::io::Read,
        cancel: Box<dyn Fn() -> bool + Send>,
    ) -> Option<Result<(), archive::UploadError>> {
        let socket = self.socket.as_deref()?;
        Some(archive::upload(
            socket,
            &self.api_version,
            name,
            path,
            body,
            cancel,
        ))
    }

    /// Unpacks a tar stream into `path` inside the container.
    pub async fn upload(
        &self,
        name: &str,
        path: &str,
        body: impl Stream<Item = Bytes> + Send + 'static,
    ) -> Result<(), EngineError> {
        let opts = qp::UploadToContainerOptions {
            path: path.to_string(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(name, Some(opts), bollard::body_stream(body))
            .await
            .map_err(|e| {
                classify(
                    &format!("writing into `{path}` of `{name}`"),
                    "path",
                    path,
                    e,
                )
            })
    }

    // -- images -------------------------------------------------------------------------------

    /// Inspects an image; `None` if it does not exist.
    pub async fn image(&self, name: &str) -> Result<Option<ImageInfo>, EngineError> {
        let inspect = self
            .docker
            .inspect_image(name)
            .await
            .map_err(|e| classify("inspecting an image", "image", name, e));
        Ok(optional(inspect)?.map(|i| {
            let raw = serde_json::to_value(&i).unwrap_or(serde_json::Value::Null);
            let config = i.config.unwrap_or_default();
            let mut exposed_ports: Vec<String> = config.exposed_ports.unwrap_or_default();
            exposed_ports.sort();
            let mut volumes: Vec<String> = config.volumes.unwrap_or_default();
            volumes.sort();
            ImageInfo {
                id: i.id.unwrap_or_default(),
                labels: config.labels.unwrap_or_default(),
                env: config.env.unwrap_or_default(),
                exposed_ports,
                volumes,
                raw,
            }
        }))
    }

    /// Builds an image from a tar context stream. Errors in the build stream fail the build.
    pub async fn build(
        &self,
        params: &BuildParams,
        context: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
        mut on_event: impl FnMut(BuildEvent) + Send,
    ) -> Result<Option<String>, EngineError> {
        let what = params.tag.clone().unwrap_or_else(|| "an image".into());
        let ctx = format!("building `{what}`");
        let opts = qp::BuildImageOptions {
            dockerfile: params.dockerfile.clone(),
            t: params.tag.clone(),
            rm: params.rm,
            forcerm: params.forcerm,
            nocache: params.nocache,
            pull: params.pull.then(|| "1".to_string()),
            buildargs: if params.buildargs.is_empty() {
                None
            } else {
                Some(params.buildargs.clone())
            },
            labels: if params.labels.is_empty() {
                None
            } else {
                Some(params.labels.clone())
            },
            target: params.target.clone().unwrap_or_default(),
            networkmode: params.network_mode.clone(),
            ..Default::default()
        };
        let body = bollard::body_try_stream(context);
        let mut stream = self.docker.build_image(opts, None, Some(body));
        let mut image_id = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| classify(&ctx, "image", &what, e))?;
            if let Some(detail) = info.error_detail {
                return Err(EngineError::Api {
                    context: ctx,
                    status: 0,
                    message: detail
                        .message
                        .unwrap_or_else(|| "the build failed".into())
                        .trim()
                        .to_string(),
                });
            }
            if let Some(line) = info.stream {
                on_event(BuildEvent::Line(line));
            }
            if let Some(aux) = info.aux {
                if let Some(id) = aux.id {
                    image_id = Some(id);
                }
            }
        }
        Ok(image_id)
    }

    /// Pulls an image (`name` may carry a tag).
    pub async fn pull(
        &self,
        name: &str,
        on_progress: impl FnMut(Progress) + Send,
    ) -> Result<(), EngineError> {
        let (repo, tag) = crate::unit::container::split_image(name);
        let opts = qp::CreateImageOptions {
            from_image: Some(repo),
            tag: Some(tag),
            ..Default::default()
        };
        let stream = self.docker.create_image(Some(opts), None, None);
        follow_progress(
            stream,
            &format!("pulling `{name}`"),
            name,
            on_progress,
            |i| {
                (
                    i.error_detail.map(|d| d.message.unwrap_or_default()),
                    Progress::from_stream(i.id, i.status, i.progress_detail),
                )
            },
        )
        .await
    }

    pub async fn remove_image(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<(), EngineError> {
        let opts = qp::RemoveImageOptions {
            force,
            noprune,
            ..Default::default()
        };
        self.docker
            .remove_image(name, Some(opts), None)
            .await
            .map(|_| ())
            .map_err(|e| classify(&format!("removing image `{name}`"), "image", name, e))
    }

    pub async fn tag_image(&self, source: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let opts = qp::TagImageOptions {
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
        };
        self.docker
            .tag_image(source, Some(opts))
            .await
            .map_err(|e| {
                classify(
                    &format!("tagging `{source}` as `{repo}:{tag}`"),
                    "image",
                    source,
                    e,
                )
            })
    }

    pub async fn commit(
        &self,
        container: &str,
        repo: &str,
        tag: &str,
        message: Option<String>,
        author: Option<String>,
    ) -> Result<String, EngineError> {
        let opts = qp::CommitContainerOptions {
            container: Some(container.to_string()),
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            comment: message,
            author,
            pause: true,
            ..Default::default()
        };
        self.docker
            .commit_container(opts, bollard::models::ContainerConfig::default())
            .await
            .map(|r| r.id)
            .map_err(|e| {
                classify(
                    &format!("committing `{container}`"),
                    "container",
                    container,
                    e,
                )
            })
    }

    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        on_progress: impl FnMut(Progress) + Send,
    ) -> Result<(), EngineError> {
        let opts = qp::PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let creds = bollard::auth::DockerCredentials::default();
        let stream = self.docker.push_image(repo, Some(opts), Some(creds));
        follow_progress(
            stream,
            &format!("pushing `{repo}:{tag}`"),
            repo,
            on_progress,
            |i| {
                (
                    i.error_detail.map(|d| d.message.unwrap_or_default()),
                    // bollard's push item has no layer ID.
                    Progress::from_stream(None, i.status, i.progress_detail),
                )
            },
        )
        .await
    }

    // -- networks and volumes -----------------------------------------------------------------

    /// Creates a network from `req` (see [`convert::network_request`]) unless one of that name
    /// exists. Returns whether it was created.
    pub async fn ensure_network(&self, req: convert::NetworkRequest) -> Result<bool, EngineError> {
        let name = req.name().to_string();
        if self.network_containers(&name).await?.is_some() {
            return Ok(false);
        }
        match self.docker.create_network(req.0).await {
            Ok(_) => Ok(true),
            // Created concurrently by a parallel order: fine.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(false),
            Err(e) => Err(classify(
                &format!("creating network `{name}`"),
                "network",
                &name,
                e,
            )),
        }
    }

    /// Attaches a container to a network under `aliases`.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        aliases: Vec<String>,
    ) -> Result<(), EngineError> {
        let req = bollard::models::NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(bollard::models::EndpointSettings {
                aliases: Some(aliases),
                ..Default::default()
            }),
        };
        self.docker
            .connect_network(network, req)
            .await
            .map_err(|e| {
                classify(
                    &format!("connecting `{container}` to network `{network}`"),
                    "network",
                    network,
                    e,
                )
            })
    }

    /// Names of the containers attached to a network; `None` if the network does not exist.
    pub async fn network_containers(&self, name: &str) -> Result<Option<Vec<String>>, EngineError> {
        let inspect = self
            .docker
            .inspect_network(name, None::<qp::InspectNetworkOptions>)
            .await
            .map_err(|e| classify("inspecting a network", "network", name, e));
        Ok(optional(inspect)?.map(|n| {
            n.containers
                .unwrap_or_default()
                .into_values()
                .filter_map(|c| c.name)
                .collect()
        }))
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .remove_network(name)
            .await
            .map_err(|e| classify(&format!("removing network `{name}`"), "network", name, e))
    }

    /// Creates a named volume from `req` (see [`convert::volume_request`]) unless it exists.
    /// Returns whether it was created.
    pub async fn ensure_volume(&self, req: convert::VolumeRequest) -> Result<bool, EngineError> {
        let name = req.name().to_string();
        if self.volume_labels(&name).await?.is_some() {
            return Ok(false);
        }
        self.docker
            .create_volume(req.0)
            .await
            .map(|_| true)
            .map_err(|e| classify(&format!("creating volume `{name}`"), "volume", &name, e))
    }

    /// The labels of a volume; `None` if it does not exist.
    pub async fn volume_labels(
        &self,
        name: &str,
    ) -> Result<Option<HashMap<String, String>>, EngineError> {
        let inspect = self
            .docker
            .inspect_volume(name)
            .await
            .map_err(|e| classify("inspecting a volume", "volume", name, e));
        Ok(optional(inspect)?.map(|v| v.labels))
    }

    pub async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.docker
            .remove_volume(name, None::<qp::RemoveVolumeOptions>)
            .await
            .map_err(|e| classify(&format!("removing volume `{name}`"), "volume", name, e))
    }

    /// Names of volumes carrying all the given labels.
    pub async fn volumes_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<String>, EngineError> {
        let opts = qp::ListVolumesOptions {
            filters: Some(label_filter(labels)),
        };
        let list = self
            .docker
            .list_volumes(Some(opts))
            .await
            .map_err(|e| classify("listing volumes", "volume", "", e))?;
        Ok(list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    /// Names of networks carrying all the given labels.
    pub async fn networks_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<String>, EngineError> {
        let opts = qp::ListNetworksOptions {
            filters: Some(label_filter(labels)),
        };
        let list = self
            .docker
            .list_networks(Some(opts))
            .await
            .map_err(|e| classify("listing networks", "network", "", e))?;
        Ok(list.into_iter().filter_map(|n| n.name).collect())
    }

    /// Images carrying all the given labels (as `repo:tag` names, or IDs when untagged).
    pub async fn images_with_labels(
        &self,
        labels: &[(&str, &str)],
    ) -> Result<Vec<String>, EngineError> {
        let opts = qp::ListImagesOptions {
            filters: Some(label_filter(labels)),
            ..Default::default()
        };
        let list = self
            .docker
            .list_images(Some(opts))
            .await
            .map_err(|e| classify("listing images", "image", "", e))?;
        Ok(list
            .into_iter()
            .flat_map(|i| {
                let tags: Vec<String> = i
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect();
                if tags.is_empty() { vec![i.id] } else { tags }
            })
            .collect())
    }
}

/// Follows a pull or push progress stream: reports each status, fails on an error in the
/// stream. `split` takes (error message, progress) out of an item.
async fn follow_progress<T>(
    mut stream: impl Stream<Item = Result<T, bollard::errors::Error>> + Unpin,
    context: &str,
    name: &str,
    mut on_progress: impl FnMut(Progress) + Send,
    split: impl Fn(T) -> (Option<String>, Option<Progress>),
) -> Result<(), EngineError> {
    while let Some(item) = stream.next().await {
        let (error, progress) = split(item.map_err(|e| classify(context, "image", name, e))?);
        if let Some(message) = error {
            return Err(EngineError::Api {
                context: context.to_string(),
                status: 0,
                message,
            });
        }
        if let Some(p) = progress {
            on_progress(p);
        }
    }
    Ok(())
}

/// `Ok(None)` for a 404 answer: the object does not exist.
fn optional<T>(result: Result<T, EngineError>) -> Result<Option<T>, EngineError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The lines of timestamped log output (`<RFC 3339 time> <text>`) logged after `after`,
/// without their timestamps. A line without a timestamp (the rest of a long line) is kept.
fn lines_after(data: &[u8], after: chrono::DateTime<chrono::Utc>) -> Bytes {
    let mut out = Vec::with_capacity(data.len());
    for line in data.split_inclusive(|b| *b == b'\n') {
        let stamped = line.iter().position(|b| *b == b' ').and_then(|i| {
            let time = std::str::from_utf8(&line[..i]).ok()?;
            let time = chrono::DateTime::parse_from_rfc3339(time).ok()?;
            Some((time, &line[i + 1..]))
        });
        match stamped {
            Some((time, text)) => {
                if time > after {
                    out.extend_from_slice(text);
                }
            }
            None => out.extend_from_slice(line),
        }
    }
    Bytes::from(out)
}

fn log_chunk(out: bollard::container::LogOutput) -> OutputChunk {
    use bollard::container::LogOutput as L;
    match out {
        L::StdErr { message } => OutputChunk {
            stderr: true,
            data: message,
        },
        L::StdOut { message } | L::Console { message } | L::StdIn { message } => OutputChunk {
            stderr: false,
            data: message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            parse_address("unix:///var/run/docker.sock", None).unwrap(),
            Address::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            parse_address("/run/docker.sock", None).unwrap(),
            Address::Unix("/run/docker.sock".into())
        );
        assert_eq!(
            parse_address("tcp://10.0.0.1:2375", None).unwrap(),
            Address::Tcp {
                host: "10.0.0.1:2375".into(),
                tls: None
            }
        );
        assert_eq!(
            parse_address("172.17.42.1:4243", None).unwrap(),
            Address::Tcp {
                host: "172.17.42.1:4243".into(),
                tls: None
            }
        );
        assert_eq!(
            parse_address("tcp://docker.example", Some("/c".into())).unwrap(),
            Address::Tcp {
                host: "docker.example:2376".into(),
                tls: Some("/c".into())
            }
        );
        assert!(parse_address("ssh://x", None).is_err());
        assert!(parse_address("unix://", None).is_err());
    }

    #[test]
    fn timestamped_lines_up_to_an_instant_are_dropped() {
        let after = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05.500000000Z")
            .unwrap()
            .to_utc();
        let data = b"2026-01-02T03:04:05.400000000Z old\n2026-01-02T03:04:05.500000000Z edge\n2026-01-02T03:04:05.600000000Z new\n";
        assert_eq!(&lines_after(data, after)[..], b"new\n");
        assert_eq!(&lines_after(b"no stamp\n", after)[..], b"no stamp\n");
    }

    #[test]
    fn anonymous_volume_detection() {
        let m = MountInfo {
            kind: "volume".into(),
            name: Some("a".repeat(64)),
            source: String::new(),
            destination: "/data".into(),
            read_write: true,
        };
        assert!(m.is_anonymous_volume());
        let named = MountInfo {
            name: Some("web-site".into()),
            ..m.clone()
        };
        assert!(!named.is_anonymous_volume());
    }
}
