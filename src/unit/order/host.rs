//! The orders only the `host` pseudo-container runs for updates (seed 003 "Updates"): `tests`
//! (test runs that must pass) and `upgrade` (one unit's containers onto moved images).

use serde::Deserialize;

use super::{TestRun, TestsArgs, UpgradeArgs};
use crate::config::source::{Origin, PathSeg};
use crate::error::ConfigError;
use crate::unit::forms::StringOrList;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTests {
    tests: StringOrList,
}

/// The test runs of a `tests` order: each `UNIT/test[:VARIANT...]`, then the unit's arguments.
pub(super) fn test_runs(raw: &RawTests, here: &Origin) -> Result<TestsArgs, ConfigError> {
    let list = here.key("tests");
    let entries = raw.tests.to_vec();
    if entries.is_empty() {
        return Err(
            list.invalid_with_hint("`tests` lists no test run", "tests: [\"web/test:check\"]")
        );
    }
    let mut tests = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = list.child(PathSeg::Index(i));
        let mut words = entry.split_whitespace().map(str::to_string);
        let command = words.next().unwrap_or_default();
        let is_test =
            crate::config::command::UnitCommand::parse(&command).is_ok_and(|c| c.command == "test");
        if !is_test {
            return Err(at.invalid_with_hint(
                format!("`{entry}` is not a test run"),
                "a test run is `UNIT/test[:VARIANT...]`, e.g. `web/test:check`, then the unit's arguments",
            ));
        }
        tests.push(TestRun {
            command,
            args: words.collect(),
        });
    }
    Ok(TestsArgs { tests })
}

/// An `upgrade` order names a unit, without a command or tokens.
pub(super) fn checked_upgrade(u: UpgradeArgs, here: &Origin) -> Result<UpgradeArgs, ConfigError> {
    if u.unit.is_empty() || u.unit.contains(':') || u.unit.starts_with('/') {
        return Err(here
            .key("unit")
            .invalid(format!("`unit: {}` is not a unit name", u.unit)));
    }
    Ok(u)
}
