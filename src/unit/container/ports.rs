//! Published and exposed ports: the compose string form, docker-py's `port_bindings` and
//! `creation.ports`, normalized into [`PortSpec`]s.

use indexmap::IndexMap;

use crate::config::source::Origin;
use crate::error::ConfigError;
use crate::unit::forms::{HostPortValue, PortText, Scalar, StrKey};

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortSpec {
    pub container_port: u16,
    pub protocol: String,
    pub host_ip: Option<String>,
    /// `None`: an ephemeral port chosen by the engine.
    pub host_port: Option<u16>,
}

impl PortSpec {
    /// `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.container_port, self.protocol)
    }
}

impl PortSpec {
    /// A port that is only exposed (docker-py `creation.ports` without a binding).
    pub fn is_expose_only(&self) -> bool {
        self.host_port.is_none() && self.host_ip.as_deref() == Some("")
    }
}

/// Parses a compose-style port: `6379`, `8080:80`, `127.0.0.1:8080:80`, `127.0.0.1::80`,
/// with an optional `/udp`.
pub fn parse_port(text: &str) -> Result<PortSpec, String> {
    let (spec, protocol) = match text.rsplit_once('/') {
        Some((s, p)) => (s, p.to_string()),
        None => (text, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("unknown protocol `{protocol}` (tcp, udp or sctp)"));
    }
    let port = |s: &str| -> Result<u16, String> {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{s}` is not a port number"))
    };
    // An IPv6 host address is written in brackets: [::1]:8080:80
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        match r.split_once("]:") {
            Some((ip, rest)) => (Some(ip.to_string()), rest),
            None => return Err("unclosed `[` in the host address".into()),
        }
    } else {
        (None, spec)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (host_ip, host_port, container) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, None, *c),
        (None, [h, c]) => (None, Some(*h), *c),
        (None, [ip, h, c]) => (Some((*ip).to_string()), Some(*h), *c),
        (Some(ip), [h, c]) => (Some(ip), Some(*h), *c),
        _ => return Err("expected PORT, HOST:PORT or IP:HOST:PORT".into()),
    };
    Ok(PortSpec {
        container_port: port(container)?,
        protocol,
        host_ip: host_ip.filter(|s| !s.is_empty()),
        host_port: match host_port {
            None | Some("") => None,
            Some(h) => Some(port(h)?),
        },
    })
}

/// The ports of a container: compose `ports` strings, docker-py `startup.port_bindings`
/// (published) and `creation.ports` (exposed only, last).
pub(super) fn ports(
    origin: &Origin,
    compose: Option<&[PortText]>,
    bindings: Option<&IndexMap<StrKey, HostPortValue>>,
    exposed: Option<&[PortText]>,
) -> Result<Vec<PortSpec>, ConfigError> {
    let sorigin = origin.key("startup");
    let corigin = origin.key("creation");
    let mut ports: Vec<PortSpec> = Vec::new();
    for (i, p) in compose.into_iter().flatten().enumerate() {
        let spec = parse_port(&p.0).map_err(|e| {
            origin
                .key("ports")
                .child(crate::config::source::PathSeg::Index(i))
                .invalid(format!("`ports`: `{}`: {e}", p.0))
        })?;
        ports.push(spec);
    }
    let compose_ports: Vec<String> = ports.iter().map(PortSpec::key).collect();
    for (StrKey(ctr), host) in bindings.into_iter().flatten() {
        let here = sorigin.key("port_bindings").key(ctr);
        let target = parse_port(ctr)
            .map_err(|e| here.invalid(format!("`startup.port_bindings`: `{ctr}`: {e}")))?;
        if target.host_port.is_some() || target.host_ip.is_some() {
            return Err(here.invalid(format!(
                "`startup.port_bindings`: the key `{ctr}` is the container port; the host side is its value"
            )));
        }
        if compose_ports.contains(&target.key()) {
            return Err(here.invalid_with_hint(
                format!(
                    "port `{}` is published by both `ports` and `startup.port_bindings`",
                    target.key()
                ),
                "keep one of them",
            ));
        }
        let bindings: Vec<(Option<String>, Option<u16>)> = match host {
            HostPortValue::None => vec![(None, None)],
            HostPortValue::Port(p) => vec![(None, Some(*p))],
            HostPortValue::Text(t) => {
                let (ip, port) = match t.rsplit_once(':') {
                    Some((ip, port)) => (Some(ip.to_string()), port),
                    None => (None, t.as_str()),
                };
                let port = if port.is_empty() {
                    None
                } else {
                    Some(port.parse::<u16>().map_err(|_| {
                        here.invalid(format!(
                            "`startup.port_bindings`: `{t}` is not PORT or IP:PORT"
                        ))
                    })?)
                };
                vec![(ip, port)]
            }
            HostPortValue::List(items) => {
                // [ip, port] (a docker-py tuple) or a list of ports.
                let is_tuple = items.len() == 2
                    && matches!(items[0], Scalar::Str(ref s) if s.parse::<u16>().is_err());
                if is_tuple {
                    let port = items[1].as_string().parse::<u16>().map_err(|_| {
                        here.invalid("`startup.port_bindings`: expected [IP, PORT]")
                    })?;
                    vec![(Some(items[0].as_string()), Some(port))]
                } else {
                    items
                        .iter()
                        .map(|p| {
                            p.as_string()
                                .parse::<u16>()
                                .map(|n| (None, Some(n)))
                                .map_err(|_| {
                                    here.invalid(format!(
                                        "`startup.port_bindings`: `{}` is not a port",
                                        p.as_string()
                                    ))
                                })
                        })
                        .collect::<Result<_, _>>()?
                }
            }
        };
        for (ip, port) in bindings {
            ports.push(PortSpec {
                container_port: target.container_port,
                protocol: target.protocol.clone(),
                host_ip: ip,
                host_port: port,
            });
        }
    }
    let mut exposed_only: Vec<PortSpec> = Vec::new();
    for (i, p) in exposed.into_iter().flatten().enumerate() {
        let spec = parse_port(&p.0).map_err(|e| {
            corigin
                .key("ports")
                .child(crate::config::source::PathSeg::Index(i))
                .invalid(format!("`creation.ports`: `{}`: {e}", p.0))
        })?;
        if !ports.iter().any(|q| q.key() == spec.key()) {
            exposed_only.push(spec);
        }
    }
    // Exposed-only ports (docker-py `creation.ports` without a binding) are exposed, not
    // published: keep them as ports without a host side only when publish_all_ports says so.
    for p in exposed_only {
        ports.push(PortSpec {
            host_port: None,
            host_ip: Some(String::new()),
            ..p
        });
    }
    Ok(ports)
}
