//! Errors talking to the engine, and the classification of bollard's errors into them.

use thiserror::Error;

/// Errors talking to the engine.
#[derive(Debug, Clone, Error)]
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
    /// No answer (or, in a stream, no data) within `DSTART_HTTP_TIMEOUT`.
    #[error(
        "no {} from the Docker engine at `{address}` {} {secs} s while {call}",
        if *stream { "data" } else { "answer" },
        if *stream { "for" } else { "within" }
    )]
    Timeout {
        address: String,
        call: String,
        secs: u64,
        stream: bool,
    },
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
            EngineError::Timeout { .. } => self.to_string(),
        }
    }

    /// What the user can do about it, when something helps.
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::Timeout { secs, .. } => Some(format!(
                "{}=SECONDS sets how long dstart waits for the engine (now {secs})",
                super::bounds::HTTP_TIMEOUT_VAR
            )),
            _ => None,
        }
    }
}

/// Turns a bollard error into an [`EngineError`], classifying 404 and 409.
pub(super) fn classify(
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
            message: super::connect::plain(&other),
        },
    }
}

/// The [`EngineError`] of an answer with HTTP status `status` and the engine's `message`.
pub(super) fn from_status(
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
