//! `ready:` of a `start` order: when a started container counts as ready (an HTTP answer, a log
//! line, or the engine's health status), each with a timeout. URLs, regexes and timeouts are
//! checked here, by their types.

use serde::Deserialize;

use crate::config::source::Origin;
use crate::error::ConfigError;
use crate::unit::forms::HttpStatus;
use crate::unit::values::{HttpUrl, Pattern, Seconds};

/// When `start` considers a container ready.
#[derive(Debug, Clone, PartialEq)]
pub enum Ready {
    Http {
        url: String,
        status: u16,
        body_match: Option<Pattern>,
        cert: Option<String>,
        timeout: Seconds,
    },
    Log {
        pattern: Pattern,
        timeout: Seconds,
    },
    Healthy {
        timeout: Seconds,
    },
}

impl Ready {
    pub fn timeout(&self) -> Seconds {
        match self {
            Ready::Http { timeout, .. }
            | Ready::Log { timeout, .. }
            | Ready::Healthy { timeout } => *timeout,
        }
    }
}

const DEFAULT_READY_TIMEOUT: Seconds = Seconds::from_secs(60);

/// `ready:` as written: the word `healthy`, or a mapping.
#[derive(Debug, Clone)]
pub(super) enum RawReady {
    Healthy,
    Full(RawReadyFull),
}

impl<'de> Deserialize<'de> for RawReady {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawReady;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "`healthy`, or a mapping with `http` (and `status`, `match`, `cert`), `log` or `healthy: true`, each with an optional `timeout`",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawReady, E> {
                if v == "healthy" {
                    Ok(RawReady::Healthy)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<RawReady, A::Error> {
                RawReadyFull::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawReady::Full)
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReadyFull {
    http: Option<HttpUrl>,
    log: Option<Pattern>,
    healthy: Option<bool>,
    status: Option<HttpStatus>,
    #[serde(rename = "match", alias = "re.match")]
    body_match: Option<Pattern>,
    cert: Option<String>,
    timeout: Option<Seconds>,
}

pub(super) fn ready_from(origin: &Origin, raw: RawReady) -> Result<Ready, ConfigError> {
    let here = origin.key("ready");
    match raw {
        RawReady::Healthy => Ok(Ready::Healthy {
            timeout: DEFAULT_READY_TIMEOUT,
        }),
        RawReady::Full(f) => {
            let timeout = f.timeout.unwrap_or(DEFAULT_READY_TIMEOUT);
            let kinds = usize::from(f.http.is_some())
                + usize::from(f.log.is_some())
                + usize::from(f.healthy == Some(true));
            if kinds != 1 {
                return Err(here.invalid_with_hint(
                    "`ready` needs exactly one of `http`, `log` and `healthy: true`",
                    "for example `ready: {http: 'http://[[ip]](web):80/', status: 200}`",
                ));
            }
            if f.log.is_some() && (f.status.is_some() || f.body_match.is_some() || f.cert.is_some())
            {
                return Err(
                    here.invalid("`status`, `match` and `cert` belong to `ready: {http: ...}`")
                );
            }
            Ok(match (f.http, f.log) {
                (Some(url), _) => Ready::Http {
                    url: url.as_str().to_string(),
                    status: f.status.map_or(200, |s| s.0),
                    body_match: f.body_match,
                    cert: f.cert,
                    timeout,
                },
                (None, Some(pattern)) => Ready::Log { pattern, timeout },
                (None, None) => Ready::Healthy { timeout },
            })
        }
    }
}
