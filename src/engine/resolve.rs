//! Which engine a run talks to, and why (SPEC "Command line"), first match wins:
//! `-H` or `--context` (not both) > `DOCKER_HOST` > `DOCKER_CONTEXT` > the environment files'
//! `DOCKER_HOST` > `currentContext` of the Docker CLI's `config.json` > the local socket.
//!
//! [`resolve`] is a pure function of what was read ([`Inputs`]) and a [`ContextStore`];
//! [`choose`] reads the process environment and the Docker CLI's directory and calls it.

use std::path::PathBuf;

use super::address::{Address, DEFAULT_SOCKET, Tls, parse_address};
use super::context::{ContextEndpoint, ContextStore, DockerConfigDir};

/// Everything the choice depends on.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub flag_host: Option<String>,
    pub flag_context: Option<String>,
    /// `DOCKER_HOST` of the process environment.
    pub env_host: Option<String>,
    /// `DOCKER_CONTEXT` of the process environment.
    pub env_context: Option<String>,
    /// `DOCKER_HOST` of the environment files.
    pub file_host: Option<String>,
    /// `DOCKER_TLS_VERIFY` is set (any non-empty value, as for the Docker CLI).
    pub tls_verify: bool,
    /// `DOCKER_TLS` is set: TLS without verifying the server.
    pub tls: bool,
    /// `DOCKER_CERT_PATH`, else the Docker CLI's directory.
    pub cert_path: PathBuf,
    /// `config.json`, and its `currentContext` (an unreadable file matters only when the
    /// choice gets that far).
    pub config_file: PathBuf,
    pub current_context: Result<Option<String>, String>,
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs {
            flag_host: None,
            flag_context: None,
            env_host: None,
            env_context: None,
            file_host: None,
            tls_verify: false,
            tls: false,
            cert_path: PathBuf::new(),
            config_file: PathBuf::new(),
            current_context: Ok(None),
        }
    }
}

/// The engine chosen and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub address: Address,
    pub why: String,
}

/// Why no engine could be chosen (a usage or configuration error: exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    BothHostAndContext,
    UnknownContext {
        name: String,
        /// What named it: `--context`, `DOCKER_CONTEXT`, `currentContext of …`.
        source: String,
        known: Vec<String>,
    },
    BadHost {
        host: String,
        why: String,
        message: String,
    },
    Unreadable(String),
}

impl ResolveError {
    pub fn message(&self) -> String {
        match self {
            ResolveError::BothHostAndContext => {
                "give either -H/--host or --context, not both".to_string()
            }
            ResolveError::UnknownContext { name, source, .. } => {
                format!("no Docker context `{name}` (named by {source})")
            }
            ResolveError::BadHost { why, message, .. } => format!("{message} ({why})"),
            ResolveError::Unreadable(message) => message.clone(),
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            ResolveError::UnknownContext { known, .. } => Some(format!(
                "known contexts: {} (`docker context ls`)",
                std::iter::once("default")
                    .chain(known.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => None,
        }
    }
}

fn nonempty(v: Option<&String>) -> Option<&str> {
    v.map(String::as_str).filter(|s| !s.is_empty())
}

/// Chooses the engine from `inputs` (see the module documentation).
pub fn resolve(inputs: &Inputs, store: &dyn ContextStore) -> Result<Choice, ResolveError> {
    if inputs.flag_host.is_some() && inputs.flag_context.is_some() {
        return Err(ResolveError::BothHostAndContext);
    }
    if let Some(host) = &inputs.flag_host {
        return host_choice(inputs, host, "-H");
    }
    if let Some(name) = &inputs.flag_context {
        return context_choice(store, name, "--context".into());
    }
    if let Some(host) = nonempty(inputs.env_host.as_ref()) {
        return host_choice(inputs, host, "DOCKER_HOST of the process environment");
    }
    if let Some(name) = nonempty(inputs.env_context.as_ref()) {
        return context_choice(store, name, "DOCKER_CONTEXT".into());
    }
    if let Some(host) = nonempty(inputs.file_host.as_ref()) {
        return host_choice(inputs, host, "DOCKER_HOST of the environment files");
    }
    let current = inputs
        .current_context
        .clone()
        .map_err(ResolveError::Unreadable)?;
    if let Some(name) = nonempty(current.as_ref()) {
        let source = format!("currentContext of {}", inputs.config_file.display());
        return context_choice(store, name, source);
    }
    Ok(local("the default: nothing names another engine".into()))
}

fn local(why: String) -> Choice {
    Choice {
        address: Address::Unix(PathBuf::from(DEFAULT_SOCKET)),
        why,
    }
}

/// A host given as text: `-H`, `DOCKER_HOST`; TLS as `DOCKER_TLS_VERIFY` / `DOCKER_TLS` say.
fn host_choice(inputs: &Inputs, host: &str, why: &str) -> Result<Choice, ResolveError> {
    let tls = (inputs.tls_verify || inputs.tls).then(|| env_tls(inputs));
    parse_address(host, tls)
        .map(|address| Choice {
            address,
            why: why.to_string(),
        })
        .map_err(|message| ResolveError::BadHost {
            host: host.to_string(),
            why: why.to_string(),
            message,
        })
}

/// The Docker CLI's TLS from the environment: `ca.pem`, `cert.pem`, `key.pem` in
/// `DOCKER_CERT_PATH`; the CA only when verifying.
fn env_tls(inputs: &Inputs) -> Tls {
    let file = |f: &str| Some(inputs.cert_path.join(f));
    Tls {
        ca: if inputs.tls_verify {
            file("ca.pem")
        } else {
            None
        },
        cert: file("cert.pem"),
        key: file("key.pem"),
        verify: inputs.tls_verify,
        source: "DOCKER_TLS_VERIFY".into(),
    }
}

fn context_choice(
    store: &dyn ContextStore,
    name: &str,
    source: String,
) -> Result<Choice, ResolveError> {
    let why = format!("context `{name}` from {source}");
    // `default` is the Docker CLI's name for "no context": here, the local socket.
    if name == "default" {
        return Ok(local(why));
    }
    let endpoint = store
        .endpoint(name)
        .map_err(ResolveError::Unreadable)?
        .ok_or_else(|| ResolveError::UnknownContext {
            name: name.to_string(),
            source,
            known: store.names(),
        })?;
    let tls = context_tls(name, &endpoint);
    parse_address(&endpoint.host, tls)
        .map(|address| Choice {
            address,
            why: why.clone(),
        })
        .map_err(|message| ResolveError::BadHost {
            host: endpoint.host.clone(),
            why,
            message,
        })
}

/// A context speaks TLS when it holds TLS material or says to skip verification.
fn context_tls(name: &str, e: &ContextEndpoint) -> Option<Tls> {
    let has_material = e.ca.is_some() || e.cert.is_some() || e.key.is_some();
    (has_material || e.skip_tls_verify).then(|| Tls {
        ca: e.ca.clone(),
        cert: e.cert.clone(),
        key: e.key.clone(),
        verify: !e.skip_tls_verify,
        source: format!("context `{name}`"),
    })
}

/// Chooses the engine for this process: reads the environment and the Docker CLI's
/// directory, then [`resolve`]s.
pub fn choose(
    flag_host: Option<&str>,
    flag_context: Option<&str>,
    file_host: Option<&str>,
) -> Result<Choice, ResolveError> {
    let dir = DockerConfigDir::from_env();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let inputs = Inputs {
        flag_host: flag_host.map(str::to_string),
        flag_context: flag_context.map(str::to_string),
        env_host: var("DOCKER_HOST"),
        env_context: var("DOCKER_CONTEXT"),
        file_host: file_host.map(str::to_string),
        tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
        tls: var("DOCKER_TLS").is_some(),
        cert_path: var("DOCKER_CERT_PATH").map_or_else(|| dir.dir.clone(), PathBuf::from),
        config_file: dir.config_file(),
        current_context: dir.load().map(|c| c.current_context),
    };
    resolve(&inputs, &dir.contexts())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use std::path::Path;

    use super::*;
    use crate::engine::address::SshTarget;

    struct MapStore(BTreeMap<String, ContextEndpoint>);

    impl ContextStore for MapStore {
        fn endpoint(&self, name: &str) -> Result<Option<ContextEndpoint>, String> {
            Ok(self.0.get(name).cloned())
        }
        fn names(&self) -> Vec<String> {
            self.0.keys().cloned().collect()
        }
    }

    fn endpoint(host: &str) -> ContextEndpoint {
        ContextEndpoint {
            host: host.into(),
            skip_tls_verify: false,
            ca: None,
            cert: None,
            key: None,
        }
    }

    fn store() -> MapStore {
        let mut m = BTreeMap::new();
        m.insert("remote".into(), endpoint("tcp://10.0.0.1:2375"));
        m.insert("far".into(), endpoint("ssh://me@far.example:2222"));
        m.insert(
            "secure".into(),
            ContextEndpoint {
                ca: Some("/ctx/ca.pem".into()),
                cert: Some("/ctx/cert.pem".into()),
                key: Some("/ctx/key.pem".into()),
                ..endpoint("tcp://secure.example")
            },
        );
        m.insert(
            "skip".into(),
            ContextEndpoint {
                skip_tls_verify: true,
                ..endpoint("tcp://skip.example:2376")
            },
        );
        m.insert("broken".into(), endpoint("fd://"));
        MapStore(m)
    }

    fn base() -> Inputs {
        Inputs {
            cert_path: "/certs".into(),
            config_file: "/home/u/.docker/config.json".into(),
            current_context: Ok(None),
            ..Inputs::default()
        }
    }

    fn unix(p: &str) -> Address {
        Address::Unix(p.into())
    }

    fn tcp(h: &str) -> Address {
        Address::Tcp {
            host: h.into(),
            tls: None,
        }
    }

    #[test]
    fn first_match_wins() {
        let s = |v: &str| Some(v.to_string());
        // (inputs, expected address, expected reason)
        let cases: Vec<(Inputs, Address, &str)> = vec![
            (
                base(),
                unix(DEFAULT_SOCKET),
                "the default: nothing names another engine",
            ),
            (
                Inputs {
                    flag_host: s("tcp://1.2.3.4:5"),
                    env_host: s("unix:///env.sock"),
                    env_context: s("remote"),
                    file_host: s("unix:///file.sock"),
                    current_context: Ok(s("far")),
                    ..base()
                },
                tcp("1.2.3.4:5"),
                "-H",
            ),
            (
                Inputs {
                    flag_context: s("remote"),
                    env_host: s("unix:///env.sock"),
                    ..base()
                },
                tcp("10.0.0.1:2375"),
                "context `remote` from --context",
            ),
            (
                Inputs {
                    env_host: s("unix:///env.sock"),
                    env_context: s("remote"),
                    file_host: s("unix:///file.sock"),
                    ..base()
                },
                unix("/env.sock"),
                "DOCKER_HOST of the process environment",
            ),
            (
                Inputs {
                    env_host: s(""),
                    env_context: s("remote"),
                    file_host: s("unix:///file.sock"),
                    current_context: Ok(s("far")),
                    ..base()
                },
                tcp("10.0.0.1:2375"),
                "context `remote` from DOCKER_CONTEXT",
            ),
            (
                Inputs {
                    file_host: s("unix:///file.sock"),
                    current_context: Ok(s("remote")),
                    ..base()
                },
                unix("/file.sock"),
                "DOCKER_HOST of the environment files",
            ),
            (
                Inputs {
                    current_context: Ok(s("far")),
                    ..base()
                },
                Address::Ssh(SshTarget {
                    user: s("me"),
                    host: "far.example".into(),
                    port: Some(2222),
                    socket: None,
                }),
                "context `far` from currentContext of /home/u/.docker/config.json",
            ),
            (
                Inputs {
                    env_context: s("default"),
                    file_host: s("unix:///file.sock"),
                    ..base()
                },
                unix(DEFAULT_SOCKET),
                "context `default` from DOCKER_CONTEXT",
            ),
            (
                // An unreadable config.json does not matter when something earlier decides.
                Inputs {
                    file_host: s("unix:///file.sock"),
                    current_context: Err("cannot read `config.json`".into()),
                    ..base()
                },
                unix("/file.sock"),
                "DOCKER_HOST of the environment files",
            ),
        ];
        for (i, (inputs, address, why)) in cases.into_iter().enumerate() {
            let choice = resolve(&inputs, &store()).unwrap_or_else(|e| panic!("case {i}: {e:?}"));
            assert_eq!(choice.address, address, "case {i}");
            assert_eq!(choice.why, why, "case {i}");
        }
    }

    #[test]
    fn tls_comes_from_the_environment_or_the_context() {
        let s = |v: &str| Some(v.to_string());
        let choice = resolve(
            &Inputs {
                env_host: s("tcp://docker.example"),
                tls_verify: true,
                ..base()
            },
            &store(),
        )
        .unwrap();
        let Address::Tcp {
            host,
            tls: Some(tls),
        } = choice.address
        else {
            panic!("{choice:?}")
        };
        assert_eq!(host, "docker.example:2376");
        assert_eq!(tls.ca.as_deref(), Some(Path::new("/certs/ca.pem")));
        assert_eq!(tls.cert.as_deref(), Some(Path::new("/certs/cert.pem")));
        assert!(tls.verify);
        // DOCKER_TLS alone: TLS, no verification, no CA.
        let choice = resolve(
            &Inputs {
                env_host: s("tcp://docker.example:1"),
                tls: true,
                ..base()
            },
            &store(),
        )
        .unwrap();
        let Address::Tcp { tls: Some(tls), .. } = choice.address else {
            panic!("{choice:?}")
        };
        assert!(!tls.verify && tls.ca.is_none());
        // A context's own TLS material; the environment's is not used for it.
        let with_ctx = |name: &str| {
            resolve(
                &Inputs {
                    flag_context: s(name),
                    tls_verify: true,
                    ..base()
                },
                &store(),
            )
            .unwrap()
            .address
        };
        let Address::Tcp {
            host,
            tls: Some(tls),
        } = with_ctx("secure")
        else {
            panic!()
        };
        assert_eq!(host, "secure.example:2376");
        assert_eq!(tls.ca.as_deref(), Some(Path::new("/ctx/ca.pem")));
        assert!(tls.verify);
        let Address::Tcp { tls: Some(tls), .. } = with_ctx("skip") else {
            panic!()
        };
        assert!(!tls.verify && tls.ca.is_none());
        assert_eq!(with_ctx("remote"), tcp("10.0.0.1:2375"));
    }

    #[test]
    fn bad_choices_are_usage_errors() {
        let s = |v: &str| Some(v.to_string());
        let err = |inputs: Inputs| resolve(&inputs, &store()).unwrap_err();
        assert_eq!(
            err(Inputs {
                flag_host: s("unix:///a"),
                flag_context: s("remote"),
                ..base()
            }),
            ResolveError::BothHostAndContext
        );
        let unknown = err(Inputs {
            env_context: s("nope"),
            ..base()
        });
        assert_eq!(
            unknown.message(),
            "no Docker context `nope` (named by DOCKER_CONTEXT)"
        );
        assert_eq!(
            unknown.hint().unwrap(),
            "known contexts: default, broken, far, remote, secure, skip (`docker context ls`)"
        );
        let fd = err(Inputs {
            env_host: s("fd://"),
            ..base()
        });
        assert!(fd.message().contains("systemd"), "{}", fd.message());
        assert!(
            fd.message()
                .ends_with("(DOCKER_HOST of the process environment)")
        );
        let broken = err(Inputs {
            flag_context: s("broken"),
            ..base()
        });
        assert!(matches!(broken, ResolveError::BadHost { .. }));
        let unreadable = err(Inputs {
            current_context: Err("cannot read `config.json`: EOF".into()),
            ..base()
        });
        assert_eq!(unreadable.message(), "cannot read `config.json`: EOF");
    }
}
