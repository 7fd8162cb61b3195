//! Mounts: compose volume strings, docker-py `startup.binds` and `creation.volumes`,
//! normalized into [`MountSpec`]s (bind, named volume, anonymous volume).

use crate::config::source::Origin;
use crate::error::ConfigError;
use crate::unit::forms::{BindTarget, BindsValue};

/// A mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A host path (may hold `${CONFIG_DIR}` / `${PWD}`; relative paths are against the
    /// configuration directory).
    Bind {
        host: String,
        container: String,
        read_only: bool,
    },
    /// A named volume.
    Named {
        name: String,
        container: String,
        read_only: bool,
    },
    /// An anonymous volume (the container's own).
    Anonymous { container: String },
}

impl MountSpec {
    pub fn container_path(&self) -> &str {
        match self {
            MountSpec::Bind { container, .. }
            | MountSpec::Named { container, .. }
            | MountSpec::Anonymous { container } => container,
        }
    }
}

/// Whether the host side of a volume string is a path (bind) rather than a volume name.
fn is_host_path(s: &str) -> bool {
    s.starts_with('/')
        || s.starts_with('.')
        || s.starts_with('~')
        || s.starts_with("${")
        || s.contains('/')
}

/// Parses a compose-style volume: `/host:/ctr[:ro]`, `name:/ctr[:ro]` or `/ctr`.
pub fn parse_volume(text: &str) -> Result<MountSpec, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let mode_ro = |m: &str| -> Result<bool, String> {
        match m {
            "ro" => Ok(true),
            "rw" => Ok(false),
            other => Err(format!("unknown mode `{other}` (ro or rw)")),
        }
    };
    let check_ctr = |c: &str| -> Result<(), String> {
        if c.starts_with('/') {
            Ok(())
        } else {
            Err(format!("the container path `{c}` must be absolute"))
        }
    };
    match parts.as_slice() {
        [c] => {
            check_ctr(c)?;
            Ok(MountSpec::Anonymous {
                container: (*c).to_string(),
            })
        }
        [h, c] | [h, c, _] => {
            check_ctr(c)?;
            let read_only = match parts.get(2) {
                Some(m) => mode_ro(m)?,
                None => false,
            };
            if h.is_empty() {
                return Err("empty host side".into());
            }
            if is_host_path(h) {
                Ok(MountSpec::Bind {
                    host: (*h).to_string(),
                    container: (*c).to_string(),
                    read_only,
                })
            } else {
                Ok(MountSpec::Named {
                    name: (*h).to_string(),
                    container: (*c).to_string(),
                    read_only,
                })
            }
        }
        _ => Err("expected /ctr, NAME:/ctr[:ro] or /host:/ctr[:ro]".into()),
    }
}

/// The mounts of a container: compose `volumes`, docker-py `startup.binds` and
/// `creation.volumes` (anonymous, unless a bind already targets the path). A container path
/// may be mounted once.
pub(super) fn mounts(
    origin: &Origin,
    compose: Option<&[String]>,
    binds: Option<&BindsValue>,
    anonymous: Option<&[String]>,
) -> Result<Vec<MountSpec>, ConfigError> {
    let sorigin = origin.key("startup");
    let corigin = origin.key("creation");
    let mut mounts: Vec<MountSpec> = Vec::new();
    for (i, v) in compose.into_iter().flatten().enumerate() {
        let m = parse_volume(v).map_err(|e| {
            origin
                .key("volumes")
                .child(crate::config::source::PathSeg::Index(i))
                .invalid(format!("`volumes`: `{v}`: {e}"))
        })?;
        mounts.push(m);
    }
    match binds {
        None => {}
        Some(BindsValue::Map(map)) => {
            for (host, target) in map {
                let (container, read_only) = match target {
                    BindTarget::Path(p) => (p.clone(), false),
                    BindTarget::Full(f) => {
                        let ro = match (&f.ro, f.mode.as_deref()) {
                            (Some(_), Some(_)) => {
                                return Err(sorigin
                                    .key("binds")
                                    .key(host)
                                    .invalid("`ro` and `mode` both given"));
                            }
                            (Some(ro), None) => *ro,
                            (None, Some("ro")) => true,
                            (None, Some("rw") | None) => false,
                            (None, Some(other)) => {
                                return Err(sorigin
                                    .key("binds")
                                    .key(host)
                                    .invalid(format!("unknown mode `{other}` (ro or rw)")));
                            }
                        };
                        (f.bind.clone(), ro)
                    }
                };
                mounts.push(MountSpec::Bind {
                    host: host.clone(),
                    container,
                    read_only,
                });
            }
        }
        Some(BindsValue::List(list)) => {
            for (i, item) in list.iter().enumerate() {
                match parse_volume(item) {
                    Ok(m @ MountSpec::Bind { .. }) => mounts.push(m),
                    Ok(_) | Err(_) => {
                        return Err(sorigin
                            .key("binds")
                            .child(crate::config::source::PathSeg::Index(i))
                            .invalid(format!(
                                "`startup.binds`: `{item}` is not /host:/container[:ro]"
                            )));
                    }
                }
            }
        }
    }
    for (i, path) in anonymous.into_iter().flatten().enumerate() {
        if !path.starts_with('/') {
            return Err(corigin
                .key("volumes")
                .child(crate::config::source::PathSeg::Index(i))
                .invalid(format!(
                    "`creation.volumes`: `{path}` must be an absolute container path"
                )));
        }
        // docker-py listed bind targets here too; those are not anonymous volumes.
        if !mounts.iter().any(|m| m.container_path() == path) {
            mounts.push(MountSpec::Anonymous {
                container: path.clone(),
            });
        }
    }
    let mut seen = std::collections::HashSet::new();
    for m in &mounts {
        if !seen.insert(m.container_path().to_string()) {
            return Err(origin.invalid(format!(
                "the container path `{}` is mounted twice",
                m.container_path()
            )));
        }
    }
    Ok(mounts)
}
