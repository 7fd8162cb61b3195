//! Where the engine is and how to connect to it: parsing a Docker host, choosing among `-H`,
//! `DOCKER_HOST` and the environment files, connecting and negotiating the API version.

use std::path::PathBuf;

use bollard::Docker;

use super::{CLIENT_TIMEOUT_SECS, Engine, EngineError, MIN_API};

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
}
