//! The built-in variants a test run asked for (ORIGINAL §6.1): `default`, `full`, `check`,
//! `production`, `restore` (issue 18), and the custom ones.

use crate::error::ConfigError;

/// The built-in variants of a test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Against the live containers: no pseudonames, no setup, no stop, no teardown.
    pub production: bool,
    /// Images built by the unit get pseudo tags and are removed by the teardown.
    pub full: bool,
    /// The `daemon` and `job` checks run.
    pub checks: bool,
    /// `restore`: the newest archives of the generated backup are restored into the copy
    /// before it starts, and then the checks run.
    pub restore: bool,
    /// Requested custom variants (`tests:` keys).
    pub custom: Vec<String>,
    /// The name of the run in archives: the built-in tokens joined by `-`.
    pub label: String,
}

impl Selection {
    /// Why swarm mode does not carry this selection out (docs/swarm.md "Tests on a swarm").
    pub fn swarm_refusal(&self) -> Option<&'static str> {
        if self.production {
            Some(
                "the variant `production` checks the live services, whose ports only the routing mesh publishes; a test copy's checks reach ports it publishes on this engine's node",
            )
        } else if self.restore {
            Some(
                "the variant `restore` restores archives into volumes before their service first runs, and a swarm places the volumes of a service with its first task",
            )
        } else {
            None
        }
    }

    /// The selection from the built-in tokens, the custom ones and `--production`.
    pub fn new(
        builtins: &[String],
        custom: &[String],
        production_flag: bool,
    ) -> Result<Self, ConfigError> {
        let has = |t: &str| builtins.iter().any(|b| b == t);
        let production = production_flag || has("production");
        let full = has("full");
        let restore = has("restore");
        if production && (full || restore || has("default")) {
            return Err(ConfigError::TestSelection {
                message: format!(
                    "the test variant `production` runs against the live containers and cannot be combined with `{}`",
                    if full {
                        "full"
                    } else if restore {
                        "restore"
                    } else {
                        "default"
                    }
                ),
            });
        }
        let mut tokens: Vec<String> = Vec::new();
        if production_flag && !has("production") {
            tokens.push("production".into());
        }
        for b in builtins {
            if !tokens.contains(b) {
                tokens.push(b.clone());
            }
        }
        Ok(Selection {
            production,
            full,
            checks: production || restore || has("check"),
            restore,
            custom: custom.to_vec(),
            label: if tokens.is_empty() {
                "default".into()
            } else {
                tokens.join("-")
            },
        })
    }
}

#[cfg(test)]
#[allow(clippy::many_single_char_names)]
mod tests {
    use super::*;

    #[test]
    fn selection_of_variants() {
        let s = |b: &[&str], prod: bool| {
            Selection::new(
                &b.iter().map(ToString::to_string).collect::<Vec<_>>(),
                &[],
                prod,
            )
        };
        let d = s(&[], false).unwrap();
        assert!(!d.checks && !d.full && !d.production);
        assert_eq!(d.label, "default");
        let c = s(&["check"], false).unwrap();
        assert!(c.checks && !c.full);
        assert_eq!(c.label, "check");
        let f = s(&["full", "check"], false).unwrap();
        assert!(f.full && f.checks);
        assert_eq!(f.label, "full-check");
        let p = s(&[], true).unwrap();
        assert!(p.production && p.checks);
        assert_eq!(p.label, "production");
        let err = s(&["full"], true).unwrap_err().to_string();
        assert!(err.contains("cannot be combined with `full`"), "{err}");
        let r = s(&["restore"], false).unwrap();
        assert!(r.restore && r.checks && !r.production);
        assert_eq!(r.label, "restore");
        let err = s(&["restore"], true).unwrap_err().to_string();
        assert!(err.contains("cannot be combined with `restore`"), "{err}");
    }

    #[test]
    fn swarm_mode_refuses_production_and_restore_only() {
        let s = |b: &[&str], prod: bool| {
            Selection::new(
                &b.iter().map(ToString::to_string).collect::<Vec<_>>(),
                &["smoke".to_string()],
                prod,
            )
            .unwrap()
        };
        for (builtins, prod, refused) in [
            (&[][..], false, None),
            (&["check"][..], false, None),
            (&["full", "check"][..], false, None),
            (&[][..], true, Some("`production`")),
            (&["production"][..], false, Some("`production`")),
            (&["restore"][..], false, Some("`restore`")),
        ] {
            let why = s(builtins, prod).swarm_refusal();
            match refused {
                None => assert!(why.is_none(), "{builtins:?} {prod}: {why:?}"),
                Some(word) => assert!(
                    why.is_some_and(|w| w.contains(word)),
                    "{builtins:?} {prod}: {why:?}"
                ),
            }
        }
    }
}
