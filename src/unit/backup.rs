//! The typed parts of backups that a unit file says: how many archives `keep` keeps (a number or
//! a restic-`forget` policy), the `before`/`after` hooks, age encryption, and the `backup:` and
//! `restore:` sections of a container spec. Checked while the unit loads.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_yaml_ng::{Mapping, Value};

use crate::unit::forms::StringOrList;

/// What `keep` keeps of the timestamped archives of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// The newest N.
    Last(u32),
    /// restic `forget`: the newest archive of each of the last N hours, days, … that have one.
    Policy(KeepPolicy),
}

/// `keep: {last, hourly, daily, weekly, monthly, yearly}`; 0 (or absent) leaves a rule out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepPolicy {
    #[serde(default)]
    pub last: u32,
    #[serde(default)]
    pub hourly: u32,
    #[serde(default)]
    pub daily: u32,
    #[serde(default)]
    pub weekly: u32,
    #[serde(default)]
    pub monthly: u32,
    #[serde(default)]
    pub yearly: u32,
}

impl KeepPolicy {
    /// The rules in the order they are printed, with their counts.
    pub fn rules(&self) -> [(&'static str, u32); 6] {
        [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
    }
}

impl Keep {
    /// Why this `keep` cannot be used, if it cannot: nothing would be kept.
    pub fn problem(&self) -> Option<&'static str> {
        match self {
            Keep::Last(0) => Some("`keep` must be at least 1"),
            Keep::Policy(p) if p.rules().iter().all(|(_, n)| *n == 0) => Some(
                "a `keep` policy must keep something: give one of its counts a value of 1 or more",
            ),
            _ => None,
        }
    }

    /// The printed form: a number, or the mapping of the rules that are set.
    pub fn to_value(&self) -> Value {
        match self {
            Keep::Last(n) => Value::from(u64::from(*n)),
            Keep::Policy(p) => {
                let mut m = Mapping::new();
                for (k, n) in p.rules() {
                    if n > 0 {
                        m.insert(k.into(), u64::from(n).into());
                    }
                }
                Value::Mapping(m)
            }
        }
    }

    /// `BACKUP_KEEP` written as text: a number (`7`) or rules (`daily=7 weekly=4`, commas or
    /// spaces between them).
    pub fn parse_text(text: &str) -> Result<Keep, String> {
        let text = text.trim();
        if let Ok(n) = text.parse::<u32>() {
            return Ok(Keep::Last(n));
        }
        let mut p = KeepPolicy::default();
        for part in text.split([',', ' ']).filter(|s| !s.is_empty()) {
            let (k, v) = part
                .split_once(['=', ':'])
                .ok_or_else(|| format!("`{part}` is not `RULE=N`"))?;
            let n: u32 = v
                .trim()
                .parse()
                .map_err(|_| format!("`{v}` is not a count"))?;
            let slot = match k.trim() {
                "last" => &mut p.last,
                "hourly" => &mut p.hourly,
                "daily" => &mut p.daily,
                "weekly" => &mut p.weekly,
                "monthly" => &mut p.monthly,
                "yearly" => &mut p.yearly,
                other => {
                    return Err(format!(
                        "unknown rule `{other}` (last, hourly, daily, weekly, monthly, yearly)"
                    ));
                }
            };
            *slot = n;
        }
        Ok(Keep::Policy(p))
    }
}

impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Keep;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of archives or a mapping of `last`, `hourly`, `daily`, `weekly`, `monthly`, `yearly`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Keep, E> {
                u32::try_from(v)
                    .map(Keep::Last)
                    .map_err(|_| E::custom(format!("`keep: {v}` is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Keep, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("`keep` must be at least 1"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Keep, E> {
                Keep::parse_text(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Keep, A::Error> {
                KeepPolicy::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Keep::Policy)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A command run inside the running container: a string for `sh -c`, or an argv list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    Shell(String),
    Argv(Vec<String>),
}

impl Hook {
    /// The argv to exec.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Hook::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
            Hook::Argv(v) => v.clone(),
        }
    }

    /// The printed form.
    pub fn to_value(&self) -> Value {
        match self {
            Hook::Shell(s) => Value::from(s.as_str()),
            Hook::Argv(v) => Value::Sequence(v.iter().map(|a| Value::from(a.as_str())).collect()),
        }
    }
}

impl<'de> Deserialize<'de> for Hook {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match StringOrList::deserialize(deserializer)? {
            StringOrList::One(s) if s.trim().is_empty() => {
                Err(de::Error::custom("the command is empty"))
            }
            StringOrList::Many(v) if v.is_empty() => Err(de::Error::custom("the command is empty")),
            StringOrList::One(s) => Ok(Hook::Shell(s)),
            StringOrList::Many(v) => Ok(Hook::Argv(v)),
        }
    }
}

/// `encrypt: {recipients: [...]}`: age recipients (`age1…`) or ssh public keys
/// (`ssh-ed25519 …`, `ssh-rsa …`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encrypt {
    pub recipients: Vec<String>,
}

/// `backup:` of a container spec: how the generated backup archives it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSpec {
    /// Container paths to archive (default: the container's own writable volumes).
    pub paths: Option<StringOrList>,
    /// Globs of members left out of the archive.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Stop the container while it is archived.
    #[serde(default)]
    pub stop: bool,
    pub before: Option<Hook>,
    pub after: Option<Hook>,
}

/// `restore:` of a container spec: what the generated restore runs around the unpacking.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreSpec {
    pub before: Option<Hook>,
    pub after: Option<Hook>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(yaml: &str) -> Result<Keep, String> {
        serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn keep_is_a_number_or_a_policy() {
        let cases: &[(&str, Result<Keep, &str>)] = &[
            ("7", Ok(Keep::Last(7))),
            ("'7'", Ok(Keep::Last(7))),
            (
                "{daily: 7, weekly: 4}",
                Ok(Keep::Policy(KeepPolicy {
                    daily: 7,
                    weekly: 4,
                    ..KeepPolicy::default()
                })),
            ),
            (
                "'daily=7, monthly=12'",
                Ok(Keep::Policy(KeepPolicy {
                    daily: 7,
                    monthly: 12,
                    ..KeepPolicy::default()
                })),
            ),
            ("{dayly: 7}", Err("unknown field `dayly`")),
            ("-1", Err("at least 1")),
            ("[1]", Err("a number of archives or a mapping")),
            ("'fortnightly=2'", Err("unknown rule `fortnightly`")),
        ];
        for (yaml, want) in cases {
            match (keep(yaml), want) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{yaml}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{yaml}: {got}"),
                (got, want) => panic!("{yaml}: {got:?}, wanted {want:?}"),
            }
        }
        assert_eq!(Keep::Last(0).problem(), Some("`keep` must be at least 1"));
        assert!(Keep::Policy(KeepPolicy::default()).problem().is_some());
        assert_eq!(
            serde_yaml_ng::to_string(&keep("{weekly: 4, daily: 7}").unwrap().to_value()).unwrap(),
            "daily: 7\nweekly: 4\n"
        );
    }

    #[test]
    fn hooks_are_argv_or_shell() {
        let h: Hook = serde_yaml_ng::from_str("pg_dump -Fc db > /backup/db.dump").unwrap();
        assert_eq!(h.argv()[..2], ["sh", "-c"]);
        let h: Hook = serde_yaml_ng::from_str("[pg_dump, -Fc]").unwrap();
        assert_eq!(h.argv(), ["pg_dump", "-Fc"]);
        assert!(serde_yaml_ng::from_str::<Hook>("[]").is_err());
        assert!(serde_yaml_ng::from_str::<Hook>("''").is_err());
    }
}
