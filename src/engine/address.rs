//! Where the engine is: the forms of a Docker host (`unix://`, `tcp://` with or without TLS,
//! `ssh://[user@]host[:port][/socket]`) and how they are parsed, as the Docker CLI reads them.

use std::path::PathBuf;

/// Where the engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Tcp { host: String, tls: Option<Tls> },
    Ssh(SshTarget),
}

/// The TLS settings of a tcp address. A missing file is not used (the Docker CLI drops a
/// client certificate it does not find); `verify: false` accepts any server certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub verify: bool,
    /// Where the settings come from, for messages (`DOCKER_TLS_VERIFY`, a context).
    pub source: String,
}

/// An engine reached through `ssh … docker system dial-stdio` (the Docker CLI's way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The engine socket on the remote host (`ssh://host/run/docker.sock`); `None`: its default.
    pub socket: Option<String>,
}

impl SshTarget {
    /// The arguments of `ssh`, as the Docker CLI passes them: a connect timeout, no terminal,
    /// `-l user`, `-p port`, `--`, the host, and the remote command.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["-o".into(), "ConnectTimeout=30".into(), "-T".into()];
        if let Some(user) = &self.user {
            args.extend(["-l".into(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".into(), port.to_string()]);
        }
        args.extend(["--".into(), self.host.clone(), "docker".into()]);
        if let Some(socket) = &self.socket {
            args.extend(["--host".into(), format!("unix://{socket}")]);
        }
        args.extend(["system".into(), "dial-stdio".into()]);
        args
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Tcp { host, .. } => write!(f, "tcp://{host}"),
            Address::Ssh(t) => {
                write!(f, "ssh://")?;
                if let Some(user) = &t.user {
                    write!(f, "{user}@")?;
                }
                write!(f, "{}", t.host)?;
                if let Some(port) = t.port {
                    write!(f, ":{port}")?;
                }
                if let Some(socket) = &t.socket {
                    write!(f, "{socket}")?;
                }
                Ok(())
            }
        }
    }
}

/// The default local socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Parses a Docker host string. `tls` applies to a tcp address (and decides its default port,
/// 2376 with TLS, else 2375).
pub fn parse_address(text: &str, tls: Option<Tls>) -> Result<Address, String> {
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
    if text.starts_with("ssh://") {
        return parse_ssh(text).map(Address::Ssh);
    }
    if text.starts_with("fd://") {
        // dockerd listens on `fd://` when systemd hands it its socket; a client has nothing
        // to connect to there (the Docker CLI fails on it too).
        return Err(format!(
            "`{text}` is the socket systemd hands to dockerd, not an address a client can connect to (use {})",
            format_args!("unix://{DEFAULT_SOCKET}")
        ));
    }
    let host = text
        .strip_prefix("tcp://")
        .or_else(|| text.strip_prefix("http://"))
        .or_else(|| text.strip_prefix("https://"))
        .unwrap_or(text)
        .trim_end_matches('/');
    if host.is_empty() || host.contains("://") || host.contains('/') {
        return Err(format!(
            "`{text}` is not a Docker host (use unix:///path/to/socket, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT])"
        ));
    }
    let host = if host.contains(':') {
        host.to_string()
    } else {
        let port = if tls.is_some() { 2376 } else { 2375 };
        format!("{host}:{port}")
    };
    Ok(Address::Tcp { host, tls })
}

/// `ssh://[user@]host[:port][/socket]`, with the Docker CLI's rules: no password, no query, a
/// host that cannot pass for an option of `ssh`.
fn parse_ssh(text: &str) -> Result<SshTarget, String> {
    let rest = &text["ssh://".len()..];
    let bad = |why: &str| format!("`{text}` is not an ssh address: {why}");
    if rest.contains('?') || rest.contains('#') {
        return Err(bad("a query or fragment is not allowed"));
    }
    let (authority, socket) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((user, hostport)) => {
            if user.contains(':') {
                return Err(bad("a password in the address is not supported"));
            }
            (Some(user.to_string()).filter(|u| !u.is_empty()), hostport)
        }
        None => (None, authority),
    };
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        // [IPv6]:port
        let (h, after) = inner
            .split_once(']')
            .ok_or_else(|| bad("an unclosed `[`"))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host.starts_with('-') {
        return Err(bad("a host may not start with `-`"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad(&format!("`{p}` is not a port")))?,
        ),
    };
    Ok(SshTarget {
        user,
        host: host.to_string(),
        port,
        socket: socket.filter(|s| *s != "/").map(str::to_string),
    })
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
        let tls = Tls {
            ca: Some("/c/ca.pem".into()),
            verify: true,
            ..Tls::default()
        };
        assert_eq!(
            parse_address("tcp://docker.example", Some(tls.clone())).unwrap(),
            Address::Tcp {
                host: "docker.example:2376".into(),
                tls: Some(tls)
            }
        );
        assert!(parse_address("unix://", None).is_err());
        assert!(parse_address("npipe:////./pipe/docker_engine", None).is_err());
        let fd = parse_address("fd://", None).unwrap_err();
        assert!(fd.contains("systemd"), "{fd}");
    }

    #[test]
    fn ssh_addresses_parse_as_the_docker_cli_reads_them() {
        let ok = |text: &str| match parse_address(text, None) {
            Ok(Address::Ssh(t)) => t,
            other => panic!("{text}: {other:?}"),
        };
        let t = ok("ssh://me@example.com:2222");
        assert_eq!(
            t,
            SshTarget {
                user: Some("me".into()),
                host: "example.com".into(),
                port: Some(2222),
                socket: None
            }
        );
        assert_eq!(
            t.ssh_args().join(" "),
            "-o ConnectTimeout=30 -T -l me -p 2222 -- example.com docker system dial-stdio"
        );
        assert_eq!(
            Address::Ssh(t).to_string(),
            "ssh://me@example.com:2222".to_string()
        );
        let t = ok("ssh://host/run/user/1000/docker.sock");
        assert_eq!(
            t.ssh_args().join(" "),
            "-o ConnectTimeout=30 -T -- host docker --host unix:///run/user/1000/docker.sock system dial-stdio"
        );
        assert_eq!(ok("ssh://[::1]:22").host, "::1");
        assert_eq!(ok("ssh://host/").socket, None);
        for bad in [
            "ssh://",
            "ssh://me:pw@host",
            "ssh://host:x",
            "ssh://host:0",
            "ssh://-oProxyCommand=x",
            "ssh://host?a=b",
        ] {
            assert!(parse_address(bad, None).is_err(), "{bad}");
        }
    }
}
