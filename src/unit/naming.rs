//! [`Naming`]: what a unit run calls things on the engine — its `dstart.unit` label, its network,
//! the keys its containers answer to, and the images a test copy builds instead of the unit's.
//! Decided once, while the unit loads ([`Naming::plain`]; a test copy's by
//! `generate::testplan::Renames::naming`), carried by the [`crate::unit::Unit`] and handed to
//! everything that runs it.
//!
//! Container and volume names themselves are in the specs: a test copy's were renamed there
//! (`generate::testplan::rename_spec`).

use std::collections::HashMap;

/// The names a unit's objects have on the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Naming {
    /// `dstart.unit` label value.
    pub unit_label: String,
    /// The unit network.
    pub network: String,
    /// Container name → the key the user wrote (a test copy's containers answer to it on the
    /// network, `DSTART_SERVICES_*` and plan lines use it).
    pub display: HashMap<String, String>,
    /// Image of the unit → the image a test run builds instead (`full`): a Dockerfile that
    /// builds `FROM` one of them builds from the test's image.
    pub images: HashMap<String, String>,
}

impl Naming {
    /// The names of a unit run as written.
    pub fn plain(unit: &str) -> Self {
        Naming {
            unit_label: unit.to_string(),
            network: network_name(unit),
            display: HashMap::new(),
            images: HashMap::new(),
        }
    }

    /// The key the user wrote for container `name`.
    pub fn display<'n>(&'n self, name: &'n str) -> &'n str {
        self.display.get(name).map_or(name, String::as_str)
    }
}

/// `dstart-<unit>` with characters Docker does not accept replaced by `-`.
pub fn network_name(unit: &str) -> String {
    format!("dstart-{}", crate::text::docker_name(unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names_are_docker_safe() {
        assert_eq!(network_name("web"), "dstart-web");
        assert_eq!(network_name("a/b c"), "dstart-a-b-c");
    }
}
