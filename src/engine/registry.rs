//! Registry credentials for pull and push, found as the Docker CLI finds them: the registry
//! of an image reference (Docker Hub's key is `https://index.docker.io/v1/`), then
//! `credHelpers` of that registry, else `credsStore` (`docker-credential-<name> get`, the
//! server address on stdin, JSON out), else `auths` of `config.json` (`auth` = base64 of
//! `user:password`, or `username`/`password`, and `identitytoken`).
//!
//! A credential never leaves this module except in the request header the engine reads:
//! [`RegistryAuth`]'s `Debug` hides it, and messages name only the registry and the source.

use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::context::{AuthEntry, ConfigFile, DockerConfigDir};

/// Docker Hub's key in `auths` and for credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Credentials for one registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub identity_token: Option<String>,
    /// The registry key they were found under.
    pub server_address: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field(
                "identity_token",
                &self.identity_token.as_ref().map(|_| "***"),
            )
            .field("server_address", &self.server_address)
            .finish()
    }
}

impl RegistryAuth {
    pub(super) fn to_bollard(&self) -> bollard::auth::DockerCredentials {
        bollard::auth::DockerCredentials {
            username: self.username.clone(),
            password: self.password.clone(),
            identitytoken: self.identity_token.clone(),
            serveraddress: Some(self.server_address.clone()),
            ..Default::default()
        }
    }
}

/// What was found for an image: the credentials (none: an anonymous pull or push) and where
/// they came from, for the `-d` line and for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub key: String,
    pub auth: Option<RegistryAuth>,
    pub source: String,
}

/// The registry host of an image reference, as the Docker CLI splits it: the first component
/// when it has a `.` or a `:`, is `localhost` or has upper-case letters; else Docker Hub
/// (`docker.io`).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            if first == "index.docker.io" {
                "docker.io".to_string()
            } else {
                first.to_string()
            }
        }
        _ => "docker.io".to_string(),
    }
}

/// The key credentials of `registry` are stored under.
pub fn auth_key(registry: &str) -> String {
    if registry == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// `http://host/path` → `host` (the Docker CLI's `ConvertToHostname`).
fn hostname(key: &str) -> &str {
    let rest = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// Where the credentials of `key` come from: a helper's name, or the file.
fn helper_of<'a>(config: &'a ConfigFile, key: &str) -> Option<&'a str> {
    config
        .cred_helpers
        .get(key)
        .or(config.creds_store.as_ref())
        .map(String::as_str)
        .filter(|h| !h.is_empty())
}

/// The `auths` entry of `key`: the exact key, else one whose host is `key`.
fn file_entry<'a>(config: &'a ConfigFile, key: &str) -> Option<&'a AuthEntry> {
    config.auths.get(key).or_else(|| {
        config
            .auths
            .iter()
            .find(|(k, _)| hostname(k) == key)
            .map(|(_, v)| v)
    })
}

/// The credentials an `auths` entry holds.
fn from_entry(entry: &AuthEntry, key: &str, file: &str) -> Result<Option<RegistryAuth>, String> {
    let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
    if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || format!("the `auth` of `{key}` in {file} is not base64 of `user:password`");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, pass) = text.split_once(':').ok_or_else(bad)?;
        username = Some(user.to_string());
        password = Some(pass.trim_end_matches('\0').to_string());
    }
    let token = entry.identitytoken.clone().filter(|t| !t.is_empty());
    if username.as_deref().is_none_or(str::is_empty) && token.is_none() {
        return Ok(None);
    }
    Ok(Some(RegistryAuth {
        username,
        password,
        identity_token: token,
        server_address: key.to_string(),
    }))
}

/// The answer of `docker-credential-<name> get`.
#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<helper> get` for `key`. `Ok(None)`: the helper has none.
async fn from_helper(
    helper: &str,
    key: &str,
    timeout: Duration,
) -> Result<Option<RegistryAuth>, String> {
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("the credential helper `{program}` is not on PATH")
            }
            _ => format!("cannot run the credential helper `{program}`: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that does not read its input fails below with its own message.
        let _ = stdin.write_all(key.as_bytes()).await;
    }
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "the credential helper `{program}` did not answer within {} s",
                timeout.as_secs()
            )
        })?
        .map_err(|e| format!("the credential helper `{program}`: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // The protocol's "nothing stored": an anonymous pull or push, as for the Docker CLI.
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let said = [stdout.trim(), String::from_utf8_lossy(&out.stderr).trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        return Err(format!(
            "the credential helper `{program}` failed for `{key}` ({}){}",
            out.status,
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        ));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!("the credential helper `{program}` did not answer with credentials in JSON")
    })?;
    if answer.username.is_empty() && answer.secret.is_empty() {
        return Ok(None);
    }
    // `<token>` as the user name means the secret is an identity token.
    Ok(Some(if answer.username == "<token>" {
        RegistryAuth {
            identity_token: Some(answer.secret),
            server_address: key.to_string(),
            ..RegistryAuth::default()
        }
    } else {
        RegistryAuth {
            username: Some(answer.username),
            password: Some(answer.secret),
            server_address: key.to_string(),
            ..RegistryAuth::default()
        }
    }))
}

/// The credentials the Docker CLI would send for `image`, from `dir`. A helper gets at most
/// `timeout` to answer.
pub async fn credentials(
    dir: &DockerConfigDir,
    image: &str,
    timeout: Duration,
) -> Result<Found, String> {
    let key = auth_key(&registry_of(image));
    let config = dir.load()?;
    let file = dir.config_file().display().to_string();
    if let Some(helper) = helper_of(&config, &key) {
        let auth = from_helper(helper, &key, timeout).await?;
        return Ok(Found {
            key,
            auth,
            source: format!("the credential helper `docker-credential-{helper}`"),
        });
    }
    let auth = match file_entry(&config, &key) {
        Some(entry) => from_entry(entry, &key, &file)?,
        None => None,
    };
    Ok(Found {
        key,
        auth,
        source: format!("`auths` of {file}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_of_a_reference_is_split_as_the_docker_cli_does() {
        for (image, registry) in [
            ("busybox", "docker.io"),
            ("library/busybox:1", "docker.io"),
            ("me/app", "docker.io"),
            ("index.docker.io/me/app", "docker.io"),
            ("localhost/app", "localhost"),
            ("localhost:5000/app:1", "localhost:5000"),
            ("127.0.0.1:5000/a/b@sha256:00", "127.0.0.1:5000"),
            ("registry.example.com/team/app", "registry.example.com"),
            ("Upper/app", "Upper"),
        ] {
            assert_eq!(registry_of(image), registry, "{image}");
        }
        assert_eq!(auth_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(auth_key("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    fn dir_with(config: &str) -> (tempfile::TempDir, DockerConfigDir) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("config.json"), config).unwrap();
        let dir = DockerConfigDir {
            dir: tmp.path().to_path_buf(),
        };
        (tmp, dir)
    }

    fn found(config: &str, image: &str) -> Result<Found, String> {
        let (_tmp, dir) = dir_with(config);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(credentials(&dir, image, Duration::from_secs(10)))
    }

    #[test]
    fn auths_are_read_by_exact_key_then_by_host() {
        // base64("me:s3cret")
        let config = r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "bWU6czNjcmV0"},
            "http://reg.example:5000/v2/": {"auth": "bWU6czNjcmV0"},
            "tok.example": {"identitytoken": "T0K"},
            "plain.example": {"username": "u", "password": "p"}
        }}"#;
        let hub = found(config, "me/app").unwrap();
        assert_eq!(hub.key, DOCKER_HUB_KEY);
        let auth = hub.auth.unwrap();
        assert_eq!(auth.username.as_deref(), Some("me"));
        assert_eq!(auth.password.as_deref(), Some("s3cret"));
        assert_eq!(auth.server_address, DOCKER_HUB_KEY);
        assert!(
            !format!("{auth:?}").contains("s3cret"),
            "Debug hides the password"
        );
        let by_host = found(config, "reg.example:5000/app").unwrap();
        assert_eq!(
            by_host.auth.unwrap().password.as_deref(),
            Some("s3cret"),
            "a key with scheme and path matches its host"
        );
        let token = found(config, "tok.example/app").unwrap().auth.unwrap();
        assert_eq!(token.identity_token.as_deref(), Some("T0K"));
        assert!(!format!("{token:?}").contains("T0K"));
        let plain = found(config, "plain.example/app").unwrap().auth.unwrap();
        assert_eq!(plain.password.as_deref(), Some("p"));
        assert_eq!(found(config, "other.example/app").unwrap().auth, None);
        assert!(found("{}", "x").unwrap().auth.is_none());
        let bad = found(r#"{"auths": {"x.example": {"auth": "!!"}}}"#, "x.example/a").unwrap_err();
        assert!(bad.contains("is not base64"), "{bad}");
        assert!(!bad.contains("!!"), "the value is not shown: {bad}");
    }

    #[test]
    fn a_missing_helper_is_named() {
        let err = found(
            r#"{"credsStore": "dstart-test-none", "auths": {}}"#,
            "reg.example/app",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "the credential helper `docker-credential-dstart-test-none` is not on PATH"
        );
        // credHelpers wins over credsStore for its registry.
        let (_tmp, dir) = dir_with(r#"{"credsStore": "a", "credHelpers": {"r.example": "b"}}"#);
        let config = dir.load().unwrap();
        assert_eq!(helper_of(&config, "r.example"), Some("b"));
        assert_eq!(helper_of(&config, "s.example"), Some("a"));
    }
}
