//! The Docker CLI's configuration directory (`$DOCKER_CONFIG`, default `~/.docker`), read as
//! the Docker CLI writes it: `config.json` (the current context, registry credentials) and the
//! context store (`contexts/meta/<sha256 of the name>/meta.json`, TLS material under
//! `contexts/tls/<sha256 of the name>/docker/`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The directory name of context `name` in the store: the SHA-256 of the name, in hex.
fn context_id(name: &str) -> String {
    crate::text::hex(&Sha256::digest(name.as_bytes()))
}

/// The Docker CLI's configuration directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfigDir {
    pub dir: PathBuf,
}

impl DockerConfigDir {
    /// `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn from_env() -> DockerConfigDir {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        DockerConfigDir { dir }
    }

    pub fn config_file(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `config.json`; an absent file is an empty configuration, as for the Docker CLI.
    pub fn load(&self) -> Result<ConfigFile, String> {
        let path = self.config_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
        }
    }

    /// The context store in this directory.
    pub fn contexts(&self) -> FileContexts {
        FileContexts {
            root: self.dir.join("contexts"),
        }
    }
}

/// What dstart reads of `config.json`. Its `Debug` never shows a credential.
#[derive(Default, Deserialize)]
pub struct ConfigFile {
    #[serde(rename = "currentContext", default)]
    pub current_context: Option<String>,
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    #[serde(rename = "credsStore", default)]
    pub creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    pub cred_helpers: BTreeMap<String, String>,
}

impl std::fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigFile")
            .field("current_context", &self.current_context)
            .field("auths", &self.auths.keys().collect::<Vec<_>>())
            .field("creds_store", &self.creds_store)
            .field("cred_helpers", &self.cred_helpers)
            .finish()
    }
}

/// One entry of `auths`: `auth` (base64 of `user:password`), or `username` and `password`,
/// and an `identitytoken`.
#[derive(Default, Deserialize, Clone)]
pub struct AuthEntry {
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub identitytoken: Option<String>,
}

/// The docker endpoint of a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEndpoint {
    /// `Endpoints.docker.Host`.
    pub host: String,
    /// `Endpoints.docker.SkipTLSVerify`.
    pub skip_tls_verify: bool,
    /// The context's TLS files that exist (`ca.pem`, `cert.pem`, `key.pem`).
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// Where contexts are looked up (the real store reads files; tests use a map).
pub trait ContextStore {
    /// The docker endpoint of context `name`; `Ok(None)` when there is no such context.
    fn endpoint(&self, name: &str) -> Result<Option<ContextEndpoint>, String>;
    /// The names of all contexts, sorted.
    fn names(&self) -> Vec<String>;
}

/// The context store of a Docker CLI configuration directory.
#[derive(Debug, Clone)]
pub struct FileContexts {
    root: PathBuf,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "Endpoints", default)]
    endpoints: BTreeMap<String, MetaEndpoint>,
}

#[derive(Deserialize)]
struct MetaEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

impl FileContexts {
    fn read_meta(path: &Path) -> Result<Meta, String> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
    }
}

impl ContextStore for FileContexts {
    fn endpoint(&self, name: &str) -> Result<Option<ContextEndpoint>, String> {
        let id = context_id(name);
        let meta_path = self.root.join("meta").join(&id).join("meta.json");
        if !meta_path.is_file() {
            return Ok(None);
        }
        let meta = Self::read_meta(&meta_path)?;
        let Some(docker) = meta.endpoints.get("docker") else {
            return Err(format!(
                "the context `{name}` has no docker endpoint (`{}`)",
                meta_path.display()
            ));
        };
        let host = docker
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                format!(
                    "the context `{name}` names no Docker host (`{}`)",
                    meta_path.display()
                )
            })?;
        let tls = self.root.join("tls").join(&id).join("docker");
        let file = |f: &str| Some(tls.join(f)).filter(|p| p.is_file());
        Ok(Some(ContextEndpoint {
            host,
            skip_tls_verify: docker.skip_tls_verify,
            ca: file("ca.pem"),
            cert: file("cert.pem"),
            key: file("key.pem"),
        }))
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.join("meta"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| Self::read_meta(&entry.path().join("meta.json")).ok())
            .map(|meta| meta.name)
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context as `docker context create` writes it (checked against Docker CLI 28).
    fn write_context(root: &Path, name: &str, host: &str, skip: bool, tls: &[&str]) {
        let id = context_id(name);
        let meta = root.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(
                r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":{skip}}}}}}}"#
            ),
        )
        .unwrap();
        let dir = root.join("contexts/tls").join(&id).join("docker");
        for f in tls {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(f), "pem").unwrap();
        }
    }

    #[test]
    fn contexts_are_found_by_the_sha256_of_their_name() {
        let tmp = tempfile::tempdir().unwrap();
        write_context(
            tmp.path(),
            "remote",
            "tcp://10.0.0.1:2376",
            true,
            &["ca.pem"],
        );
        // The Docker CLI's own directory name for `remote`.
        assert!(
            tmp.path()
                .join(
                    "contexts/meta/b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a"
                )
                .is_dir()
        );
        write_context(tmp.path(), "b", "ssh://me@h", false, &[]);
        let dir = DockerConfigDir {
            dir: tmp.path().to_path_buf(),
        };
        let store = dir.contexts();
        let remote = store.endpoint("remote").unwrap().unwrap();
        assert_eq!(remote.host, "tcp://10.0.0.1:2376");
        assert!(remote.skip_tls_verify);
        assert!(remote.ca.is_some() && remote.cert.is_none() && remote.key.is_none());
        assert_eq!(store.endpoint("nope").unwrap(), None);
        assert_eq!(store.names(), ["b", "remote"]);
        // No config.json: an empty configuration.
        assert!(dir.load().unwrap().current_context.is_none());
        std::fs::write(dir.config_file(), r#"{"currentContext": "b", "auths": {}}"#).unwrap();
        assert_eq!(dir.load().unwrap().current_context.as_deref(), Some("b"));
        std::fs::write(dir.config_file(), "{").unwrap();
        assert!(dir.load().unwrap_err().contains("config.json"));
    }
}
