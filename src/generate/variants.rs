//! Variants (ORIGINAL §5 \[C\]): which orders the requested tokens keep.
//!
//! With tokens, a command keeps its untagged orders plus the tagged orders whose tags meet the
//! active set (the tokens expanded by `config::modes`); without tokens it keeps every order.

use std::collections::BTreeSet;
use std::path::Path;

use crate::config::modes::ModeConfig;
use crate::error::ConfigError;
use crate::unit::order::{Order, Step};

/// Every `variants` tag used by `steps`.
pub fn variant_tags(steps: &[Step]) -> BTreeSet<String> {
    steps
        .iter()
        .flat_map(Step::orders)
        .flat_map(|o| o.variants.iter().cloned())
        .collect()
}

/// Checks that every pending token is one of `known` (variant tags, test variants, read from
/// `unit_file`).
pub fn check_pending(
    pending: &[String],
    known: &BTreeSet<String>,
    cfg: &ModeConfig,
    unit_file: &Path,
) -> Result<(), ConfigError> {
    for token in pending {
        if !known.contains(token) {
            let mut valid: Vec<String> = cfg
                .atoms
                .iter()
                .cloned()
                .chain(cfg.groups.keys().cloned())
                .chain(known.iter().cloned())
                .collect();
            valid.sort();
            valid.dedup();
            // Name the file a user would open to see the tokens: the one with the modes and
            // groups, else the unit file with the `variants` tags.
            let file = match &cfg.file {
                Some(f) if !cfg.atoms.is_empty() || !cfg.groups.is_empty() => f.clone(),
                _ => unit_file.to_path_buf(),
            };
            return Err(ConfigError::InvalidMode {
                file: Some(file),
                token: token.clone(),
                valid,
            });
        }
    }
    Ok(())
}

fn keep(order: &Order, active: &BTreeSet<String>, filtering: bool) -> bool {
    !filtering || order.variants.is_empty() || order.variants.iter().any(|v| active.contains(v))
}

/// Keeps the orders selected by `active` (all of them when no token was given).
pub fn filter_steps(steps: Vec<Step>, active: &BTreeSet<String>, filtering: bool) -> Vec<Step> {
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::Order(o) => {
                if keep(&o, active, filtering) {
                    out.push(Step::Order(o));
                }
            }
            Step::Parallel {
                max,
                max_given,
                orders,
                generated,
            } => {
                let orders: Vec<Order> = orders
                    .into_iter()
                    .filter(|o| keep(o, active, filtering))
                    .collect();
                if !orders.is_empty() {
                    out.push(Step::Parallel {
                        max,
                        max_given,
                        orders,
                        generated,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::globals::Globals;
    use crate::config::modes::{expand, mode_config};

    fn globals() -> Globals {
        serde_yaml_ng::from_str(
            "modes: {global: [ga, gb], test: [ta, tb]}\ngroups: {global: {GG: [ga, gb]}, test: {GT: [ga, tb]}, other: {INVALID: [ga, unknown]}}\n",
        )
        .unwrap()
    }

    fn active(cmd: &str, tokens: &[&str]) -> Result<BTreeSet<String>, ConfigError> {
        let g = globals();
        let cfg = mode_config(Some(&g), &[cmd])?;
        let tokens: Vec<String> = tokens.iter().map(ToString::to_string).collect();
        let e = expand(&tokens, &cfg);
        check_pending(
            &e.pending,
            &BTreeSet::new(),
            &cfg,
            Path::new("units/u/start.yaml"),
        )?;
        Ok(e.active)
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn original_test_modes_expectations() {
        let g = globals();
        let cfg = mode_config(Some(&g), &["test"]).unwrap();
        assert_eq!(cfg.atoms, set(&["ga", "gb", "ta", "tb"]));
        assert_eq!(cfg.groups.keys().cloned().collect::<Vec<_>>(), ["GG", "GT"]);
        let cfg = mode_config(Some(&g), &["test2"]).unwrap();
        assert_eq!(cfg.atoms, set(&["ga", "gb"]));
        let err = mode_config(Some(&g), &["other"]).unwrap_err().to_string();
        assert!(err.contains("undefined mode atoms `unknown`"), "{err}");

        assert_eq!(
            active("test", &["GT", "ta"]).unwrap(),
            set(&["ga", "tb", "ta"])
        );
        assert_eq!(
            active("test", &["GG", "GT"]).unwrap(),
            set(&["ga", "gb", "tb"])
        );
        assert_eq!(active("other2", &["GG", "ga"]).unwrap(), set(&["ga", "gb"]));
        let err = active("test", &["tc"]).unwrap_err().to_string();
        assert_eq!(err, "units/u/start.yaml: invalid mode selected: `tc`");
    }

    #[test]
    fn an_invalid_token_names_the_file_with_the_modes() {
        let g = globals();
        let cfg = ModeConfig {
            file: Some("units/u/globals.yaml".into()),
            ..mode_config(Some(&g), &["test"]).unwrap()
        };
        let unit_file = Path::new("units/u/start.yaml");
        let err = check_pending(&["tc".into()], &BTreeSet::new(), &cfg, unit_file).unwrap_err();
        assert_eq!(
            err.to_string(),
            "units/u/globals.yaml: invalid mode selected: `tc`"
        );
        // No modes or groups: the tokens are the variant tags of the unit file.
        let none = ModeConfig {
            file: Some("units/u/globals.yaml".into()),
            ..ModeConfig::default()
        };
        let err = check_pending(&["tc".into()], &set(&["quick"]), &none, unit_file).unwrap_err();
        assert_eq!(
            err.to_string(),
            "units/u/start.yaml: invalid mode selected: `tc`"
        );
        assert_eq!(err.hint().unwrap(), "valid tokens: quick");
    }
}
