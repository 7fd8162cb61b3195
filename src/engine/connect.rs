//! Connecting to a chosen engine: the transport for its address (bollard's own for a unix
//! socket and plain tcp, [`transport`] for TLS and ssh), the API version negotiation, and a
//! failed connection said in plain words.

use std::time::Duration;

use bollard::Docker;

use super::address::Address;
use super::{CLIENT_TIMEOUT_SECS, Engine, EngineError, MIN_API, transport};

impl Engine {
    /// Connects to `address` and negotiates the API version. Every later call waits at most
    /// `timeout` for an answer (see `bounds.rs`); so does the negotiation.
    pub async fn connect(address: &Address, timeout: Duration) -> Result<Engine, EngineError> {
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
                .map_err(|e| unreachable(plain(&e)))?
            }
            Address::Tcp { host, tls: None } => {
                Docker::connect_with_http(host, CLIENT_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
                    .map_err(|e| unreachable(plain(&e)))?
            }
            Address::Tcp {
                host,
                tls: Some(tls),
            } => transport::tls(host, tls, &shown)?,
            Address::Ssh(target) => transport::ssh(target, &shown)?,
        };
        let docker = tokio::time::timeout(timeout, docker.negotiate_version())
            .await
            .map_err(|_| EngineError::Timeout {
                address: shown.clone(),
                call: "asking for its API version".into(),
                secs: timeout.as_secs(),
                stream: false,
            })?
            .map_err(|e| unreachable(plain(&e)))?;
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
                Address::Tcp { .. } | Address::Ssh(_) => None,
            },
            timeout,
        })
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn api_version(&self) -> &str {
        &self.api_version
    }
}

/// What went wrong on the way to the engine, in plain words: the innermost I/O error of the
/// chain (a refused connection, a missing socket, ssh's own message), not the HTTP client's
/// `client error (Connect)`.
pub(super) fn plain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost_io: Option<&std::io::Error> = None;
    let mut last = err;
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            innermost_io = Some(io);
        }
        last = e;
        current = e.source();
    }
    let Some(io) = innermost_io else {
        return last.to_string();
    };
    match io.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            "the connection was refused (is the engine listening there?)".into()
        }
        std::io::ErrorKind::NotFound => "the socket does not exist".into(),
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (is this user in the `docker` group?)".into()
        }
        std::io::ErrorKind::TimedOut => "the connection timed out".into(),
        std::io::ErrorKind::ConnectionReset => "the engine closed the connection".into(),
        _ => io
            .get_ref()
            .map_or_else(|| io.to_string(), ToString::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_innermost_io_error_is_said_in_plain_words() {
        let refused = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(
            plain(&refused),
            "the connection was refused (is the engine listening there?)"
        );
        let ssh = Outer(std::io::Error::other(
            "`ssh -- host docker system dial-stdio` failed (exit status: 255): Permission denied",
        ));
        assert_eq!(
            plain(&ssh),
            "`ssh -- host docker system dial-stdio` failed (exit status: 255): Permission denied"
        );
    }

    #[tokio::test]
    async fn a_refused_tcp_connection_names_the_address() {
        // A port nothing listens on: bind, note the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = Address::Tcp {
            host: format!("127.0.0.1:{port}"),
            tls: None,
        };
        let err = Engine::connect(&address, Duration::from_secs(5))
            .await
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot reach the Docker engine at `tcp://127.0.0.1:{port}`: the connection was refused (is the engine listening there?)"
            )
        );
    }
}
