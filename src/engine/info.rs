//! The engine-neutral types the rest of dstart sees: what dstart needs to know about
//! containers and images, container output, pull and push progress, build parameters.

use std::collections::HashMap;
use std::pin::Pin;

use bollard::models::ContainerInspectResponse;
use bytes::Bytes;
use futures_util::Stream;

use super::EngineError;

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
    pub(super) fn from_inspect(inspect: &ContainerInspectResponse) -> Self {
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
    pub(super) fn from_stream(
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

/// An image in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: String,
    /// Seconds since the epoch.
    pub created: i64,
    /// `repo:tag` names (none for a dangling image).
    pub tags: Vec<String>,
}

/// A summary of a container in a listing.
#[derive(Debug, Clone)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
    /// The ID of the image the container runs.
    pub image_id: String,
    pub running: bool,
}

/// A container's output, chunk by chunk.
pub type OutputStream = Pin<Box<dyn Stream<Item = Result<OutputChunk, EngineError>> + Send>>;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, EngineError>> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;

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
