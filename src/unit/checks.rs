//! Test metadata of a container (ORIGINAL §6.3): `daemon` HTTP checks, a `job` check, named
//! `jobs` runs and custom `tests` variants.

use std::fmt;

use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::unit::forms::{HttpStatus, StringOrList};
use crate::unit::values::{HttpMethod, HttpUrl, Pattern, Seconds};

/// An HTTP check run from the host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// The method in the named form (`type: GET`); the list form names it as the key.
    #[serde(rename = "type")]
    pub method: Option<HttpMethod>,
    /// May hold `[[...]](container)` substitutions.
    pub url: HttpUrl,
    /// Expected status (default 200).
    pub status: Option<HttpStatus>,
    /// A regex the body must contain.
    #[serde(rename = "match", alias = "re.match")]
    pub body_match: Option<Pattern>,
    /// The request must fail, with an error text matching this regex.
    pub error_match: Option<Pattern>,
    /// A CA certificate (PEM) for HTTPS.
    pub cert: Option<String>,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// A request body.
    pub body: Option<String>,
    /// Seconds to retry until the check passes (default 10).
    pub timeout: Option<Seconds>,
    /// `false`: the check changes data (a POST that writes), so it runs only against a test
    /// copy and is skipped in `--production` runs (SPEC "Tests").
    #[serde(default = "yes")]
    pub production: bool,
}

fn yes() -> bool {
    true
}

/// `daemon:` in either form: `{name: check}` or `[{METHOD: check}, ...]`.
#[derive(Debug, Clone)]
pub struct DaemonChecks {
    /// (case name, method, check)
    pub checks: Vec<(String, HttpMethod, HttpCheck)>,
}

impl<'de> Deserialize<'de> for DaemonChecks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DaemonVisitor)
    }
}

struct DaemonVisitor;

impl<'de> Visitor<'de> for DaemonVisitor {
    type Value = DaemonChecks;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping of named checks, or a list of {METHOD: check}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut checks = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            let check: HttpCheck = map.next_value()?;
            let method = check.method.unwrap_or(HttpMethod::GET);
            checks.push((name, method, check));
        }
        Ok(DaemonChecks { checks })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut checks = Vec::new();
        let mut index = 0;
        while let Some(item) = seq.next_element::<MethodCheck>()? {
            let name = format!("{index}:{}", item.0.as_str());
            checks.push((name, item.0, item.1));
            index += 1;
        }
        Ok(DaemonChecks { checks })
    }
}

/// `{GET: check}`.
struct MethodCheck(HttpMethod, HttpCheck);

impl<'de> Deserialize<'de> for MethodCheck {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MethodCheck;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a one-key mapping {METHOD: check}, like {GET: {url: ...}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(method) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "expected {METHOD: check}, found an empty mapping",
                    ));
                };
                let upper = HttpMethod::new(&method).map_err(de::Error::custom)?;
                let check: HttpCheck = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("expected one method per list item"));
                }
                Ok(MethodCheck(upper, check))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// A log expectation: `{re.match: REGEX}`, `{match: REGEX}` or a plain regex.
#[derive(Debug, Clone)]
pub struct LogMatch(pub Pattern);

impl<'de> Deserialize<'de> for LogMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LogMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a regex, or {re.match: REGEX}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Pattern::new(v).map(LogMatch).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "re.match" | "match" => out = Some(map.next_value::<Pattern>()?),
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}`, expected `re.match` or `match`"
                            )));
                        }
                    }
                }
                out.map(LogMatch)
                    .ok_or_else(|| de::Error::custom("expected {re.match: REGEX}"))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// `job:` on a container started by the unit: wait for it to exit, then check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobCheck {
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub logs: Vec<LogMatch>,
    /// Seconds to wait for the exit (default 60).
    pub timeout: Option<Seconds>,
    /// `false`: skipped in `--production` runs (see [`HttpCheck::production`]).
    #[serde(default = "yes")]
    pub production: bool,
}

/// A named run under `jobs:`: a fresh container from the spec with `args` as its command.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRun {
    #[serde(default)]
    pub args: Vec<String>,
    pub exit_code: Option<i64>,
    #[serde(rename = "match", alias = "re.match")]
    pub output_match: Option<Pattern>,
    #[serde(default)]
    pub logs: Vec<LogMatch>,
    #[serde(default, alias = "gather_files")]
    pub files: Vec<String>,
    pub timeout: Option<Seconds>,
    /// `false`: skipped in `--production` runs (see [`HttpCheck::production`]).
    #[serde(default = "yes")]
    pub production: bool,
}

/// A custom test variant under `tests:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomTest {
    /// The command (a string runs with `sh -c`).
    pub execute: StringOrList,
    /// Keys replacing those of `creation` / `startup` (`volumes_from`, `binds`, ...).
    #[serde(default)]
    pub overwrites: serde_yaml_ng::Mapping,
    /// Keys merged into `creation` / `startup`.
    #[serde(default)]
    pub extra: serde_yaml_ng::Mapping,
    /// Files to copy out of the container after the run (globs or directories).
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub capture_logs: bool,
    /// Seconds before the run is stopped (default 600).
    pub timeout: Option<Seconds>,
    /// Expected exit code (default 0).
    pub exit_code: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_named_form() {
        let d: DaemonChecks = serde_yaml_ng::from_str(
            "port_open: {type: GET, url: 'http://[[ip]](web):80', status: 200, match: happy}\nssl: {url: 'https://x', error_match: self-signed}\n",
        )
        .unwrap();
        assert_eq!(d.checks.len(), 2);
        assert_eq!(d.checks[0].0, "port_open");
        assert_eq!(
            d.checks[0].2.body_match.as_ref().map(Pattern::as_str),
            Some("happy")
        );
        assert_eq!(d.checks[1].1, HttpMethod::GET);
    }

    #[test]
    fn daemon_list_form() {
        let d: DaemonChecks = serde_yaml_ng::from_str(
            "- GET: {url: 'https://cgit.main:443', status: 200, re.match: 'My git', cert: /c.pem}\n- head: {url: 'http://x'}\n",
        )
        .unwrap();
        assert_eq!(d.checks[0].0, "0:GET");
        assert_eq!(
            d.checks[0].2.body_match.as_ref().map(Pattern::as_str),
            Some("My git")
        );
        assert_eq!(d.checks[1].0, "1:HEAD");
    }

    #[test]
    fn daemon_unknown_key_is_an_error() {
        let err =
            serde_yaml_ng::from_str::<DaemonChecks>("- GET: {url: 'http://x', stauts: 200}\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown field `stauts`"), "{err}");
    }

    #[test]
    fn production_false_marks_checks_that_change_data() {
        let d: DaemonChecks = serde_yaml_ng::from_str(
            "- POST: {url: 'http://x/', production: false}
- GET: {url: 'http://x/'}
",
        )
        .unwrap();
        assert!(!d.checks[0].2.production);
        assert!(d.checks[1].2.production, "the default");
        let j: JobCheck = serde_yaml_ng::from_str(
            "production: false
",
        )
        .unwrap();
        assert!(!j.production);
        let r: JobRun = serde_yaml_ng::from_str(
            "args: [x]
",
        )
        .unwrap();
        assert!(r.production);
        let err = serde_yaml_ng::from_str::<JobRun>(
            "production: sometimes
",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("production"), "{err}");
    }

    #[test]
    fn job_logs_forms() {
        let j: JobCheck =
            serde_yaml_ng::from_str("exit_code: 0\nlogs: [{re.match: Success}, 'done$']\n")
                .unwrap();
        assert_eq!(j.logs.len(), 2);
        assert_eq!(j.logs[1].0.as_str(), "done$");
    }
}
