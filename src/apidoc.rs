//! The API an image documents with labels (seed 004): `api.ENV.<NAME>` (default value),
//! `api.ENV.<NAME>.description`, `api.ENV.<NAME>.mandatory`, plus its exposed ports and
//! volumes. Shown by `help --service` for the images built from the service directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::engine::{Address, Engine, ImageInfo};

/// The label images built by dstart carry: their build directory as written in the unit.
pub const LABEL_BUILD_PATH: &str = "dstart.build-path";

#[derive(Debug, Default)]
struct EnvDoc {
    default: Option<String>,
    description: Option<String>,
    mandatory: bool,
}

/// A readable description of an image's API.
pub fn format_api(image: &str, info: &ImageInfo) -> String {
    let mut envs: BTreeMap<String, EnvDoc> = BTreeMap::new();
    for (k, v) in &info.labels {
        let Some(rest) = k.strip_prefix("api.ENV.") else {
            continue;
        };
        if let Some(name) = rest.strip_suffix(".description") {
            envs.entry(name.to_string()).or_default().description = Some(v.clone());
        } else if let Some(name) = rest.strip_suffix(".mandatory") {
            envs.entry(name.to_string()).or_default().mandatory = v.eq_ignore_ascii_case("true");
        } else {
            envs.entry(rest.to_string()).or_default().default = Some(v.clone());
        }
    }
    let mut out = format!("Image: {image}\n");
    let (mandatory, optional): (Vec<_>, Vec<_>) = envs.iter().partition(|(_, d)| d.mandatory);
    for (title, list) in [
        ("Mandatory environment variables", mandatory),
        ("Optional environment variables", optional),
    ] {
        let _ = writeln!(out, "  {title}:");
        if list.is_empty() {
            out.push_str("    (none)\n");
        }
        for (name, doc) in list {
            let _ = write!(out, "    {name}");
            if let Some(d) = doc.default.as_deref().filter(|d| !d.is_empty()) {
                let _ = write!(out, " (default: {d})");
            }
            if let Some(desc) = &doc.description {
                let _ = write!(out, ": {desc}");
            }
            out.push('\n');
        }
    }
    let ports = if info.exposed_ports.is_empty() {
        "(none)".to_string()
    } else {
        info.exposed_ports.join(", ")
    };
    let volumes = if info.volumes.is_empty() {
        "(none)".to_string()
    } else {
        info.volumes.join(", ")
    };
    let _ = writeln!(out, "  Ports: {ports}");
    let _ = writeln!(out, "  Volumes: {volumes}");
    out
}

/// The API of the images built from `services/<service>` (or `data/<service>`), if the engine
/// can be reached and such images exist. Never fails: this is extra help.
pub async fn describe_service(
    address: &Address,
    timeout: std::time::Duration,
    service: &str,
) -> Result<String, String> {
    let engine = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        Engine::connect(address, timeout),
    )
    .await
    .map_err(|_| "the engine did not answer".to_string())?
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    for dir in [format!("services/{service}"), format!("data/{service}")] {
        let images = engine
            .images_with_labels(&[(LABEL_BUILD_PATH, dir.as_str())])
            .await
            .map_err(|e| e.to_string())?;
        for image in images {
            if let Some(info) = engine.image(&image).await.map_err(|e| e.to_string())? {
                out.push('\n');
                out.push_str(&format_api(&image, &info));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn api_labels_are_described() {
        let info = ImageInfo {
            id: "sha256:x".into(),
            labels: HashMap::from([
                ("api.ENV.KEY".to_string(), String::new()),
                (
                    "api.ENV.KEY.description".to_string(),
                    "Access key".to_string(),
                ),
                ("api.ENV.KEY.mandatory".to_string(), "true".to_string()),
                ("api.ENV.ROOT".to_string(), "/var/www".to_string()),
                ("api.ENV.ROOT.mandatory".to_string(), "false".to_string()),
                ("other".to_string(), "x".to_string()),
            ]),
            env: Vec::new(),
            exposed_ports: vec!["80/tcp".into()],
            volumes: vec!["/var/www".into()],
            raw: serde_json::Value::Null,
        };
        assert_eq!(
            format_api("me/web:1", &info),
            "Image: me/web:1\n  Mandatory environment variables:\n    KEY: Access key\n  Optional environment variables:\n    ROOT (default: /var/www)\n  Ports: 80/tcp\n  Volumes: /var/www\n"
        );
    }
}
