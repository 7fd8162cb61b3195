//! The template environment (ORIGINAL §1.6): built-ins, environment files, `-e FILE`, `osenv`.
//!
//! Precedence, lowest first: built-ins (`DOCKERSTRA_CONF`, `UID`, `GID`); every `*.yaml` /
//! `*.yml` file in `environments/`, sorted by name and deep-merged; the `-e` file, merged
//! shallowly on top; `osenv`, the process environment, which no file can override.

use std::path::Path;

use serde_json::{Map, Value};

use crate::config::discover::ConfigDir;
use crate::config::source::{Source, yaml_to_json};
use crate::error::{ConfigError, Location};

/// The merged template variables of a run.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: Map<String, Value>,
}

impl Environment {
    /// Reads the environment of `conf`, with an optional `-e` file.
    pub fn load(conf: &ConfigDir, extra: Option<&Path>) -> Result<Self, ConfigError> {
        let mut vars = Map::new();
        vars.insert(
            "DOCKERSTRA_CONF".into(),
            Value::String(conf.root().display().to_string()),
        );
        vars.insert("UID".into(), Value::from(nix::unistd::getuid().as_raw()));
        vars.insert("GID".into(), Value::from(nix::unistd::getgid().as_raw()));
        let dir = conf.environments_dir();
        let entries = std::fs::read_dir(&dir).map_err(|source| ConfigError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut files: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        for file in files {
            let map = read_mapping(&file)?;
            deep_merge(&mut vars, map);
        }
        if let Some(extra) = extra {
            for (k, v) in read_mapping(extra)? {
                vars.insert(k, v);
            }
        }
        let osenv: Map<String, Value> = std::env::vars()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        vars.insert("osenv".into(), Value::Object(osenv));
        Ok(Environment { vars })
    }

    /// An environment from a ready map (tests, nested runs).
    pub fn from_map(vars: Map<String, Value>) -> Self {
        Environment { vars }
    }

    pub fn vars(&self) -> &Map<String, Value> {
        &self.vars
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.vars.get(key)
    }

    /// A variable as a string, if it is a string or a number.
    pub fn get_str(&self, key: &str) -> Option<String> {
        match self.vars.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Sets a variable (used for `tempid`).
    pub fn set(&mut self, key: &str, value: Value) {
        self.vars.insert(key.to_string(), value);
    }

    /// The variables without `osenv` (what a test report records).
    pub fn without_osenv(&self) -> Map<String, Value> {
        self.vars
            .iter()
            .filter(|(k, _)| k.as_str() != "osenv")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Reads a YAML file whose top level is a mapping (or empty).
fn read_mapping(path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let text = crate::config::source::read_text(path)?;
    let source = std::sync::Arc::new(Source::new(path, text));
    let docs = source.documents()?;
    if docs.len() > 1 {
        return Err(ConfigError::Invalid {
            location: source.document_start(1),
            message: "an environment file holds one YAML document, found more".into(),
            hint: None,
        });
    }
    match docs.into_iter().next().map(|d| yaml_to_json(&d)) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(ConfigError::Invalid {
            location: Location {
                file: path.to_path_buf(),
                line: Some(1),
                column: Some(1),
            },
            message: format!(
                "an environment file must be a mapping of variables, found {}",
                json_kind(&other)
            ),
            hint: None,
        }),
    }
}

pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Merges `over` into `base`: nested mappings recursively, everything else replaced.
pub fn deep_merge(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conf_with(files: &[(&str, &str)]) -> (tempfile::TempDir, ConfigDir) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("environments")).unwrap();
        for (name, text) in files {
            std::fs::write(tmp.path().join("environments").join(name), text).unwrap();
        }
        let conf = ConfigDir::at(tmp.path());
        (tmp, conf)
    }

    #[test]
    fn files_deep_merge_in_name_order_and_e_is_shallow() {
        let (tmp, conf) = conf_with(&[
            ("b.yaml", "db: {host: b, port: 2}\nname: b\n"),
            ("a.yaml", "db: {host: a, user: x}\nname: a\n"),
            ("empty.yaml", ""),
            ("notes.txt", "not: read"),
        ]);
        let env = Environment::load(&conf, None).unwrap();
        assert_eq!(
            env.get("db"),
            Some(&json!({"host": "b", "user": "x", "port": 2}))
        );
        assert_eq!(env.get_str("name").as_deref(), Some("b"));
        assert!(env.get("not").is_none());

        let extra = tmp.path().join("extra.yaml");
        std::fs::write(&extra, "db: {host: e}\n").unwrap();
        let env = Environment::load(&conf, Some(&extra)).unwrap();
        assert_eq!(env.get("db"), Some(&json!({"host": "e"})));
    }

    #[test]
    fn builtins_can_be_overridden_but_osenv_cannot() {
        let (_tmp, conf) = conf_with(&[("a.yaml", "UID: 7\nosenv: {X: 1}\n")]);
        let env = Environment::load(&conf, None).unwrap();
        assert_eq!(env.get("UID"), Some(&json!(7)));
        assert!(env.get("osenv").unwrap().get("PATH").is_some());
        assert!(env.get("DOCKERSTRA_CONF").is_some());
    }

    #[test]
    fn non_mapping_file_is_an_error_naming_it() {
        let (_tmp, conf) = conf_with(&[("a.yaml", "- 1\n- 2\n")]);
        let err = Environment::load(&conf, None).unwrap_err().to_string();
        assert!(err.contains("a.yaml:1:1"), "{err}");
        assert!(err.contains("found a list"), "{err}");
    }
}
