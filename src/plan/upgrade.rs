//! What the generated `upgrade` does with one container (SPEC "Generated commands"): it
//! re-creates a running container of the unit whose image reference now names another image
//! than the one it runs, and touches nothing else. A pure function of what the engine reports,
//! shared by `execute::upgrade` and `run --plan`.

use crate::engine::ContainerInfo;
use crate::plan::Owner;

/// What `upgrade` does with one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// Re-create it from the image its reference names now, then start it.
    Recreate,
    /// Leave it as it is, for this reason (`image unchanged`, `not running`, ...).
    Keep(String),
}

impl Upgrade {
    /// The word of `run --plan`: `recreate` or `keep`.
    pub fn action(&self) -> &'static str {
        match self {
            Upgrade::Recreate => "recreate",
            Upgrade::Keep(_) => "keep",
        }
    }

    /// Why, as `run --plan` and the `-d` lines say it.
    pub fn reason(&self) -> String {
        match self {
            Upgrade::Recreate => "image changed".into(),
            Upgrade::Keep(why) => why.clone(),
        }
    }
}

/// Decides for one container: `info` as the engine reports it (`None`: absent), `image_id` the
/// ID its spec's image reference names now (`None`: no such image on the engine), `unit_label`
/// the unit's `dstart.unit` value.
pub fn decide(info: Option<&ContainerInfo>, image_id: Option<&str>, unit_label: &str) -> Upgrade {
    let Some(info) = info else {
        return Upgrade::Keep("absent".into());
    };
    if !info.running {
        return Upgrade::Keep("not running".into());
    }
    let owner = Owner::of(&info.labels, unit_label);
    if !owner.is_unit() {
        return Upgrade::Keep(match owner {
            Owner::OtherUnit(u) => format!("running, belongs to unit {u}"),
            _ => "running, not created by dstart".into(),
        });
    }
    match image_id {
        None => Upgrade::Keep("its image reference names no image".into()),
        Some(id) if id == info.image_id => Upgrade::Keep("image unchanged".into()),
        Some(_) => Upgrade::Recreate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn container(running: bool, unit: Option<&str>) -> ContainerInfo {
        ContainerInfo {
            running,
            image_id: "sha256:old".into(),
            labels: unit
                .map(|u| HashMap::from([("dstart.unit".to_string(), u.to_string())]))
                .unwrap_or_default(),
            ..ContainerInfo::default()
        }
    }

    #[test]
    fn only_running_containers_of_the_unit_on_a_moved_image_are_recreated() {
        let keep = |why: &str| Upgrade::Keep(why.into());
        let cases: Vec<(Option<ContainerInfo>, Option<&str>, Upgrade)> = vec![
            (None, Some("sha256:new"), keep("absent")),
            (
                Some(container(false, Some("site"))),
                Some("sha256:new"),
                keep("not running"),
            ),
            (
                Some(container(true, Some("site"))),
                Some("sha256:old"),
                keep("image unchanged"),
            ),
            (
                Some(container(true, Some("site"))),
                Some("sha256:new"),
                Upgrade::Recreate,
            ),
            (
                Some(container(true, Some("site"))),
                None,
                keep("its image reference names no image"),
            ),
            (
                Some(container(true, None)),
                Some("sha256:new"),
                keep("running, not created by dstart"),
            ),
            (
                Some(container(true, Some("shop"))),
                Some("sha256:new"),
                keep("running, belongs to unit shop"),
            ),
        ];
        for (i, (info, image, expected)) in cases.into_iter().enumerate() {
            assert_eq!(decide(info.as_ref(), image, "site"), expected, "case {i}");
        }
        assert_eq!(Upgrade::Recreate.reason(), "image changed");
    }
}
