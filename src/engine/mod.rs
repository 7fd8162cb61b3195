//! The Docker engine: connection, API version negotiation and typed calls. This is the only
//! module that knows bollard; everything else sees the engine-neutral types of `info.rs`.
//!
//! ```text
//! resolve.rs     which engine: -H, --context, DOCKER_HOST, DOCKER_CONTEXT, ... (pure)
//! context.rs     the Docker CLI's directory: config.json and the context store
//! address.rs     the forms of a Docker host: unix, tcp (TLS), ssh
//! connect.rs     connecting and negotiating; failures in plain words
//! transport.rs   TLS as the Docker CLI allows it, ssh through `docker system dial-stdio`
//! bounds.rs      DSTART_HTTP_TIMEOUT: every call and every stream gap bounded
//! error.rs       EngineError and the classification of bollard's errors
//! info.rs        engine-neutral types: containers, images, output, progress, build parameters
//! containers.rs  container calls and the archive endpoint
//! exec.rs        logs, attach, exec
//! images.rs      inspect, build, pull, push, tag, commit, remove
//! networks.rs    networks and volumes
//! services.rs    swarm mode: the engine's role, services and their tasks
//! service_spec.rs a container spec into a service spec (pure)
//! registry.rs    registry credentials for pull and push, as the Docker CLI finds them
//! archive.rs     the archive endpoint over plain HTTP on the unix socket (fast path)
//! convert.rs     a container spec into a create request (pure)
//! watchdog.rs    removes a helper container when dstart dies
//! ```

mod address;
pub mod archive;
mod bounds;
mod connect;
mod containers;
pub mod context;
pub mod convert;
mod error;
mod exec;
mod images;
mod info;
mod networks;
pub mod registry;
pub mod resolve;
pub mod service_spec;
mod services;
mod transport;
pub mod watchdog;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;

pub use address::{Address, DEFAULT_SOCKET, SshTarget, Tls, parse_address};
pub use bounds::{DEFAULT_HTTP_TIMEOUT, HTTP_TIMEOUT_VAR, http_timeout};
pub use error::EngineError;
use error::{classify, from_status};
pub use info::{
    BuildEvent, BuildParams, ByteStream, ContainerInfo, ContainerSummary, Created, ImageInfo,
    ImageSummary, MountInfo, OutputChunk, OutputStream, Progress,
};
pub use services::{ServiceInfo, SwarmRole, TaskInfo};

/// The oldest engine API dstart works with.
pub const MIN_API: (usize, usize) = (1, 41);

/// Seconds bollard waits for a response. Long calls (wait, attach, archives) must not time out
/// on their own; dstart applies its own timeouts where an order asks for one.
const CLIENT_TIMEOUT_SECS: u64 = 60 * 60 * 24 * 7;

/// A connected engine.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    address: String,
    api_version: String,
    /// The unix socket, when the engine is reached through one.
    socket: Option<PathBuf>,
    /// `DSTART_HTTP_TIMEOUT` (see `bounds.rs`).
    timeout: Duration,
}

fn label_filter(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut f = HashMap::new();
    f.insert(
        "label".to_string(),
        pairs.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    );
    f
}

/// `Ok(None)` for a 404 answer: the object does not exist.
fn optional<T>(result: Result<T, EngineError>) -> Result<Option<T>, EngineError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
