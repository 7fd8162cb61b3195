//! Decisions as pure functions (STYLE.md "Decide, then do"; SPEC "Plans and status"): what
//! `start` does with a container, from what the engine reports about it and what the unit says.
//! `execute::lifecycle::start` carries the decision out; `run --plan` and `status` print it, so
//! the three can never disagree.

use std::collections::BTreeMap;

use crate::engine::ContainerInfo;
use crate::engine::convert::{LABEL_HASH, LABEL_KEYS};
use crate::unit::order::Recreate;

pub mod owner;
pub mod service;
pub mod upgrade;
pub use owner::Owner;
pub use service::{
    Convergence, ServiceDecision, WantedService, convergence, decide_service, service_drift,
};
pub use upgrade::Upgrade;

/// What the engine reports about a container.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed<'a> {
    /// The container, `None` when it is absent.
    pub container: Option<&'a ContainerInfo>,
    /// The ID the container's image reference names now (`None`: not on the engine).
    pub image_id: Option<&'a str>,
}

/// What the unit says about the container.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// The configuration hash of its create request.
    pub hash: &'a str,
    /// The digests of its configuration keys.
    pub keys: &'a BTreeMap<String, String>,
    /// The unit's `dstart.unit` label value: a container without it is not the unit's.
    pub unit_label: &'a str,
    pub recreate: Recreate,
    /// `restart: true`.
    pub restart: bool,
}

/// How an existing container differs from its spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The configuration changed: the keys that did (empty when the container predates the
    /// per-key digests).
    Config(Vec<String>),
    /// The image reference now names another image.
    Image,
    /// `recreate: always`.
    Always,
    /// Created by someone else: dstart never recreates it.
    Foreign,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Config(keys) if keys.is_empty() => write!(f, "configuration changed"),
            Drift::Config(keys) => write!(f, "configuration changed: {}", keys.join(", ")),
            Drift::Image => write!(f, "image changed"),
            Drift::Always => write!(f, "recreate: always"),
            Drift::Foreign => write!(f, "not created by dstart"),
        }
    }
}

/// What to do with a container that is not recreated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// It is stopped: start it.
    Start,
    /// It runs and `restart: true`: stop and start it.
    Restart,
    /// It runs: leave it.
    Keep,
}

/// What `start` does with a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Absent: create and start it.
    Create,
    /// Replace it by one made from the spec, for these reasons.
    Recreate(Vec<Drift>),
    /// Created by dstart and not recreated (unchanged, or `recreate: never`).
    Existing {
        next: Next,
        /// Differences that `recreate: never` keeps.
        kept: Vec<Drift>,
    },
    /// Not created by dstart: never recreated, only started.
    Foreign(Next),
}

impl Decision {
    /// The word of `run --plan`: `create`, `recreate`, `start`, `restart`, `keep`.
    pub fn action(&self) -> &'static str {
        match self {
            Decision::Create => "create",
            Decision::Recreate(_) => "recreate",
            Decision::Existing { next, .. } | Decision::Foreign(next) => match next {
                Next::Start => "start",
                Next::Restart => "restart",
                Next::Keep => "keep",
            },
        }
    }

    /// Why, as `run --plan` prints it: `absent`, `configuration changed: env.A, ports`,
    /// `running, unchanged`.
    pub fn reasons(&self) -> Vec<String> {
        let state = |next: &Next| match next {
            Next::Start => "not running".to_string(),
            Next::Restart => "running, restart: true".to_string(),
            Next::Keep => "running".to_string(),
        };
        match self {
            Decision::Create => vec!["absent".into()],
            Decision::Recreate(drift) => drift.iter().map(ToString::to_string).collect(),
            Decision::Existing { next, kept } if kept.is_empty() => {
                vec![state(next), "unchanged".into()]
            }
            Decision::Existing { next, kept } => std::iter::once(state(next))
                .chain(kept.iter().map(|d| format!("{d}, kept by recreate: never")))
                .collect(),
            Decision::Foreign(next) => vec![state(next), Drift::Foreign.to_string()],
        }
    }
}

/// The digests of a container's configuration keys, from its label (empty without one).
pub fn label_keys(info: &ContainerInfo) -> BTreeMap<String, String> {
    info.labels
        .get(LABEL_KEYS)
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default()
}

/// The keys whose digests differ (or that only one side has), sorted.
pub fn changed_keys(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<String> = old
        .keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// How an existing container differs from what the unit wants (what `status` shows as drift).
pub fn drift(info: &ContainerInfo, wanted: &Wanted<'_>, image_id: Option<&str>) -> Vec<Drift> {
    if !Owner::of(&info.labels, wanted.unit_label).is_unit() {
        return vec![Drift::Foreign];
    }
    let mut out = Vec::new();
    if info.labels.get(LABEL_HASH).map(String::as_str) != Some(wanted.hash) {
        let old = label_keys(info);
        out.push(Drift::Config(if old.is_empty() {
            Vec::new()
        } else {
            changed_keys(&old, wanted.keys)
        }));
    }
    if image_id.is_some_and(|id| id != info.image_id) {
        out.push(Drift::Image);
    }
    out
}

/// What `start` does with the container (SPEC "Orders": idempotent, recreates on change).
pub fn decide(observed: &Observed<'_>, wanted: &Wanted<'_>) -> Decision {
    let Some(info) = observed.container else {
        return Decision::Create;
    };
    let next = match (info.running, wanted.restart) {
        (false, _) => Next::Start,
        (true, true) => Next::Restart,
        (true, false) => Next::Keep,
    };
    let mut found = drift(info, wanted, observed.image_id);
    if found.contains(&Drift::Foreign) {
        return Decision::Foreign(next);
    }
    match wanted.recreate {
        Recreate::Always => {
            found.insert(0, Drift::Always);
            Decision::Recreate(found)
        }
        Recreate::Auto if !found.is_empty() => Decision::Recreate(found),
        Recreate::Auto => Decision::Existing {
            next,
            kept: Vec::new(),
        },
        Recreate::Never => Decision::Existing { next, kept: found },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn container(running: bool, labels: &[(&str, &str)]) -> ContainerInfo {
        ContainerInfo {
            running,
            image_id: "sha256:old".into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect::<HashMap<_, _>>(),
            ..ContainerInfo::default()
        }
    }

    /// (container: running, labels), image id now, recreate, restart, the decision.
    type Row<'a> = (
        Option<(bool, &'a Vec<(&'a str, &'a str)>)>,
        Option<&'a str>,
        Recreate,
        bool,
        Decision,
    );

    const OLD_KEYS: &str = r#"{"env.A":"1","env.GREETING":"1","image":"1","ports":"1"}"#;

    #[test]
    fn start_decides_from_the_engine_and_the_unit() {
        let keys: BTreeMap<String, String> = [
            ("env.A", "1"),
            ("env.GREETING", "2"),
            ("image", "1"),
            ("ports", "2"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ours = |hash: &str, keys: &'static str| {
            vec![
                ("dstart.unit", "site"),
                (LABEL_HASH, if hash == "h" { "h" } else { "other" }),
                (LABEL_KEYS, keys),
            ]
        };
        let same = ours("h", OLD_KEYS);
        let changed = ours("x", OLD_KEYS);
        let changed_unkeyed = ours("x", "");
        let foreign: Vec<(&str, &str)> = vec![("maintainer", "someone")];
        // Made by dstart, but for another unit (or a test copy): not this unit's either.
        let other_unit: Vec<(&str, &str)> = vec![("dstart.unit", "shop"), (LABEL_HASH, "h")];
        let config = |k: &[&str]| Drift::Config(k.iter().map(ToString::to_string).collect());
        let existing = |next, kept| Decision::Existing { next, kept };
        let table: Vec<Row<'_>> = vec![
            (None, None, Recreate::Auto, false, Decision::Create),
            (
                None,
                Some("sha256:old"),
                Recreate::Always,
                true,
                Decision::Create,
            ),
            (
                Some((true, &same)),
                Some("sha256:old"),
                Recreate::Auto,
                false,
                existing(Next::Keep, vec![]),
            ),
            (
                Some((true, &same)),
                None,
                Recreate::Auto,
                false,
                existing(Next::Keep, vec![]),
            ),
            (
                Some((true, &same)),
                Some("sha256:old"),
                Recreate::Auto,
                true,
                existing(Next::Restart, vec![]),
            ),
            (
                Some((false, &same)),
                Some("sha256:old"),
                Recreate::Auto,
                false,
                existing(Next::Start, vec![]),
            ),
            (
                Some((true, &same)),
                Some("sha256:new"),
                Recreate::Auto,
                false,
                Decision::Recreate(vec![Drift::Image]),
            ),
            (
                Some((false, &changed)),
                Some("sha256:old"),
                Recreate::Auto,
                false,
                Decision::Recreate(vec![config(&["env.GREETING", "ports"])]),
            ),
            (
                Some((true, &changed)),
                Some("sha256:new"),
                Recreate::Auto,
                false,
                Decision::Recreate(vec![config(&["env.GREETING", "ports"]), Drift::Image]),
            ),
            (
                Some((true, &changed_unkeyed)),
                Some("sha256:old"),
                Recreate::Auto,
                false,
                Decision::Recreate(vec![config(&[])]),
            ),
            (
                Some((true, &same)),
                Some("sha256:old"),
                Recreate::Always,
                false,
                Decision::Recreate(vec![Drift::Always]),
            ),
            (
                Some((true, &changed)),
                Some("sha256:old"),
                Recreate::Never,
                false,
                existing(Next::Keep, vec![config(&["env.GREETING", "ports"])]),
            ),
            (
                Some((false, &same)),
                Some("sha256:new"),
                Recreate::Never,
                false,
                existing(Next::Start, vec![Drift::Image]),
            ),
            (
                Some((true, &foreign)),
                Some("sha256:new"),
                Recreate::Always,
                false,
                Decision::Foreign(Next::Keep),
            ),
            (
                Some((false, &foreign)),
                None,
                Recreate::Auto,
                false,
                Decision::Foreign(Next::Start),
            ),
            (
                Some((true, &foreign)),
                None,
                Recreate::Auto,
                true,
                Decision::Foreign(Next::Restart),
            ),
            (
                Some((true, &other_unit)),
                Some("sha256:new"),
                Recreate::Always,
                false,
                Decision::Foreign(Next::Keep),
            ),
        ];
        for (i, (state, image_id, recreate, restart, expected)) in table.into_iter().enumerate() {
            let info = state.map(|(running, labels)| container(running, labels));
            let observed = Observed {
                container: info.as_ref(),
                image_id,
            };
            let wanted = Wanted {
                hash: "h",
                keys: &keys,
                unit_label: "site",
                recreate,
                restart,
            };
            assert_eq!(decide(&observed, &wanted), expected, "row {i}");
        }
    }

    #[test]
    fn decisions_read_as_plan_lines() {
        let cases = [
            (Decision::Create, "create", "absent"),
            (
                Decision::Recreate(vec![
                    Drift::Config(vec!["env.GREETING".into(), "ports".into()]),
                    Drift::Image,
                ]),
                "recreate",
                "configuration changed: env.GREETING, ports; image changed",
            ),
            (
                Decision::Existing {
                    next: Next::Keep,
                    kept: vec![],
                },
                "keep",
                "running; unchanged",
            ),
            (
                Decision::Existing {
                    next: Next::Start,
                    kept: vec![Drift::Config(vec![])],
                },
                "start",
                "not running; configuration changed, kept by recreate: never",
            ),
            (
                Decision::Foreign(Next::Keep),
                "keep",
                "running; not created by dstart",
            ),
        ];
        for (decision, action, reasons) in cases {
            assert_eq!(decision.action(), action);
            assert_eq!(decision.reasons().join("; "), reasons);
        }
    }

    #[test]
    fn changed_keys_include_added_and_removed_ones() {
        let map = |items: &[(&str, &str)]| -> BTreeMap<String, String> {
            items
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        assert_eq!(
            changed_keys(
                &map(&[("a", "1"), ("b", "1"), ("c", "1")]),
                &map(&[("b", "2"), ("c", "1"), ("d", "1")])
            ),
            ["a", "b", "d"]
        );
        assert!(changed_keys(&map(&[("a", "1")]), &map(&[("a", "1")])).is_empty());
    }
}
