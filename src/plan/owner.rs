//! Whose a resource found under one of a unit's names is (SPEC "Orders": dstart removes and
//! recreates only what it made), decided from its labels alone. `plan::decide` and the removals
//! in `execute` ask the same question here.

use std::collections::HashMap;

use crate::engine::convert::LABEL_UNIT;

/// Whose a resource found on the engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Made by dstart for this unit: it may be removed or recreated.
    Unit,
    /// No `dstart.unit` label: made by hand or by another tool.
    Unlabelled,
    /// Made by dstart for another unit (or another test run).
    OtherUnit(String),
}

impl Owner {
    /// Reads the `dstart.unit` label of a resource against the unit's label value.
    #[allow(clippy::implicit_hasher)]
    pub fn of(labels: &HashMap<String, String>, unit_label: &str) -> Owner {
        match labels.get(LABEL_UNIT) {
            Some(l) if l == unit_label => Owner::Unit,
            Some(l) => Owner::OtherUnit(l.clone()),
            None => Owner::Unlabelled,
        }
    }

    pub fn is_unit(&self) -> bool {
        *self == Owner::Unit
    }

    /// Why dstart leaves it alone, for a warning.
    pub fn why(&self) -> String {
        match self {
            Owner::Unit => "it belongs to the unit".into(),
            Owner::Unlabelled => {
                format!("dstart did not create it (it has no `{LABEL_UNIT}` label)")
            }
            Owner::OtherUnit(u) => format!("it belongs to unit `{u}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels of a resource, the unit's label value, whose it is.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Owner);

    #[test]
    fn only_the_units_own_label_makes_it_the_units() {
        let labels = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        let cases: [Case; 6] = [
            (&[("dstart.unit", "shop")], "shop", Owner::Unit),
            (
                &[("dstart.unit", "shop"), ("dstart.config-hash", "x")],
                "shop",
                Owner::Unit,
            ),
            (&[], "shop", Owner::Unlabelled),
            (&[("com.example.team", "ops")], "shop", Owner::Unlabelled),
            // The container key alone is not the unit's label.
            (
                &[("dstart.container", "shop-db")],
                "shop",
                Owner::Unlabelled,
            ),
            (
                &[("dstart.unit", "shop_1a2b3c")],
                "shop",
                Owner::OtherUnit("shop_1a2b3c".into()),
            ),
        ];
        for (pairs, unit, expected) in cases {
            assert_eq!(Owner::of(&labels(pairs), unit), expected, "{pairs:?}");
        }
        assert!(Owner::Unit.is_unit());
        assert!(Owner::Unlabelled.why().contains("no `dstart.unit` label"));
        assert!(Owner::OtherUnit("a".into()).why().contains("unit `a`"));
    }
}
